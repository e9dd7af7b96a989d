"""What one REST request costs our node beyond a bare quart-trio route, and next to Orthanc.

    python bench/http_overhead.py [--requests N] [--clients N] [--repeat N]

Three servers answer GET /system with 4 keep-alive clients: a bare QuartTrio app
served by hypercorn's trio worker (the floor of the stack we build on, started by
this script with ``--serve-bare PORT``), our node, and real Orthanc 1.10.1. Each
runs as its own process; figures are requests/s and the server's CPU time per
request, medians of ``repeat`` fresh starts.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Server, Starter, fmt, median, orthanc, our_node
from bench.orthanc_process import free_port, orthanc_binary, stop, wait_ready


def serve_bare(port: int) -> None:
    """A QuartTrio app with the one route, served like our node serves its app."""
    import hypercorn.config
    import hypercorn.trio
    from quart import Response
    from quart_trio import QuartTrio

    app = QuartTrio("bare")
    body = json.dumps({"Name": "bare", "Version": "1.10.1", "DicomPort": 4242, "HttpPort": port}, indent=3)

    @app.route("/system")
    async def system() -> Response:
        return Response(body, content_type="application/json; charset=utf-8")

    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    trio.run(hypercorn.trio.serve, app, config)


@contextmanager
def bare(folder: Path) -> Iterator[Server]:
    port = free_port()
    log = folder / "bare.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-bare", str(port)], cwd=ROOT, stdout=output, stderr=output
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        yield Server("bare quart-trio", url, 0, "", process.pid)
    finally:
        stop(process)


async def _get_all(url: str, clients: int, count: int) -> float:
    """Seconds for ``clients`` keep-alive connections to send ``count`` GET /system in all."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    connections = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for _ in range(clients)]
    try:
        for client in connections:
            (await client.get("/system")).raise_for_status()

        async def share(client: httpx.AsyncClient) -> None:
            for _ in range(count // clients):
                (await client.get("/system")).raise_for_status()

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for client in connections:
                nursery.start_soon(share, client)
        return time.perf_counter() - start
    finally:
        for client in connections:
            await client.aclose()


def measure(server: Server, clients: int, count: int) -> tuple[float, float]:
    """(requests/s, server CPU ms per request), after a warm-up."""
    trio.run(_get_all, server.http_url, clients, 200)
    cpu = server.cpu_seconds()
    seconds = trio.run(_get_all, server.http_url, clients, count)
    done = count // clients * clients
    return done / seconds, (server.cpu_seconds() - cpu) * 1000 / done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    servers: list[Starter] = [bare, our_node]
    if orthanc_binary() is not None:
        servers.append(orthanc)
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as temporary:
        for run in range(args.repeat):
            for number, start in enumerate(servers):
                folder = Path(temporary) / f"run{run}-server{number}"
                folder.mkdir()
                with start(folder) as server:
                    rate, cpu_ms = measure(server, args.clients, args.requests)
                results.setdefault(server.name, []).append((rate, cpu_ms))
                print(f"run {run + 1}/{args.repeat} {server.name}: {rate:.0f}/s, {cpu_ms:.3f} ms CPU", flush=True)
    print(f"\nGET /system, {args.clients} keep-alive clients, medians of {args.repeat}:")
    print(f"{'server':<18}{'requests/s':>12}{'CPU ms/request':>16}")
    for name, runs in results.items():
        rate, cpu = median([r for r, _ in runs]), median([c for _, c in runs])
        print(f"{name:<18}{fmt(rate, '.0f'):>12}{fmt(cpu, '.3f'):>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
