"""What one REST request costs our node, next to Orthanc and to a bare quart-trio route.

    python bench/http_overhead.py [--requests N] [--repeat N] [--only NAME]

One client, one keep-alive connection on a raw socket (the client costs next to
nothing, so the figure is the server's), sends N requests one after the other:
the median latency and the server's CPU time per request (Linux /proc) are printed
for each kind of request:

- GET /system, also on a bare QuartTrio app served by hypercorn's trio worker (the
  floor of the stack we build on, started by this script with ``--serve-bare PORT``);
- GET /instances/{id}/tags of a stored tiny instance;
- POST /instances of tiny instances (distinct ones), with SyncStorageArea off and on.

Every server runs as its own process, started afresh for each repeat; figures are
medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Server, fmt, median, orthanc, our_node, ratio, tiny_instances
from bench.orthanc_process import free_port, orthanc_binary, stop, wait_ready

WARM_UP = 200
RECEIVE_SIZE = 64 * 1024
HEADER_END = b"\r\n\r\n"


def serve_bare(port: int) -> None:
    """A QuartTrio app with the one route, served like hypercorn serves any app."""
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
    config.keep_alive_max_requests = sys.maxsize  # one connection for every request, as for the others
    config.errorlog = logging.getLogger("hypercorn.error")
    trio.run(hypercorn.trio.serve, app, config)


@contextmanager
def bare(folder: Path, _: dict[str, object] | None = None) -> Iterator[Server]:
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


class Connection:
    """One keep-alive HTTP/1.1 connection: a request out, its whole answer in."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._socket = socket.create_connection((host, int(port)))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        self._socket.close()

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of the answer to ``request``, which must keep the connection open."""
        self._socket.sendall(request)
        while HEADER_END not in self._buffer:
            self._receive()
        head, self._buffer = self._buffer.split(HEADER_END, 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(b":")[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return status, body

    def _receive(self) -> None:
        data = self._socket.recv(RECEIVE_SIZE)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/dicom\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@dataclass(frozen=True)
class Figures:
    latency_ms: float  # median of one request's round trip
    cpu_ms: float  # server CPU per request


def timed(server: Server, requests: list[bytes]) -> Figures:
    """Send ``requests`` one by one on one connection; every answer must be a 200."""
    connection = Connection(server.http_url)
    try:
        latencies = []
        cpu = server.cpu_seconds()
        for request in requests:
            start = time.perf_counter()
            status, body = connection.exchange(request)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                raise RuntimeError(f"{server.name}: {status} {body[:200]!r}")
        cpu_ms = (server.cpu_seconds() - cpu) * 1000 / len(requests)
    finally:
        connection.close()
    return Figures(statistics.median(latencies) * 1000, cpu_ms)


def system_case(server: Server, count: int) -> Figures:
    timed(server, [get("/system")] * WARM_UP)
    return timed(server, [get("/system")] * count)


def tags_case(server: Server, count: int) -> Figures:
    connection = Connection(server.http_url)
    try:
        _, body = connection.exchange(post("/instances", tiny_instances(1, "tags")[0]))
    finally:
        connection.close()
    request = get(f"/instances/{json.loads(body)['ID']}/tags")
    timed(server, [request] * WARM_UP)
    return timed(server, [request] * count)


def store_case(server: Server, count: int) -> Figures:
    timed(server, [post("/instances", data) for data in tiny_instances(WARM_UP, "warm")])
    return timed(server, [post("/instances", data) for data in tiny_instances(count, "timed")])


@dataclass(frozen=True)
class Case:
    name: str
    measure: Callable[[Server, int], Figures]
    options: dict[str, object]
    with_bare: bool = False


CASES = [
    Case("GET /system", system_case, {}, with_bare=True),
    Case("GET /instances/{id}/tags", tags_case, {}),
    Case("POST /instances sync off", store_case, {"SyncStorageArea": False}),
    Case("POST /instances sync on", store_case, {"SyncStorageArea": True}),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per case")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server")
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    starters = {"ours": our_node}
    if orthanc_binary() is not None:
        starters["orthanc"] = orthanc
    if args.only:
        starters = {args.only: starters[args.only]}
    results: dict[tuple[str, str], list[Figures]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as temporary:
        for run in range(args.repeat):
            for case in CASES:
                servers = list(starters.values()) + ([bare] if case.with_bare and not args.only else [])
                for number, start in enumerate(servers):
                    folder = Path(temporary) / f"run{run}-{CASES.index(case)}-{number}"
                    folder.mkdir()
                    with start(folder, case.options) as server:
                        figures = case.measure(server, args.requests)
                    results.setdefault((case.name, server.name), []).append(figures)
                    print(
                        f"run {run + 1}/{args.repeat} {case.name} {server.name}: "
                        f"{figures.latency_ms:.3f} ms, {figures.cpu_ms:.3f} ms CPU",
                        flush=True,
                    )
    print(f"\nOne keep-alive connection, {args.requests} sequential requests, medians of {args.repeat}:")
    print(f"{'request':<28}{'server':<18}{'latency ms':>12}{'CPU ms/req':>12}{'vs Orthanc':>12}")
    for case in CASES:
        theirs = results.get((case.name, "Orthanc"))
        their_latency = median([f.latency_ms for f in theirs]) if theirs else None
        for (name, server), runs in results.items():
            if name != case.name:
                continue
            latency, cpu = median([f.latency_ms for f in runs]), median([f.cpu_ms for f in runs])
            versus = fmt(ratio(latency, their_latency), ".2f")
            print(f"{name:<28}{server:<18}{fmt(latency, '.3f'):>12}{fmt(cpu, '.3f'):>12}{versus:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
