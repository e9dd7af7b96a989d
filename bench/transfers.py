"""Sending from our node against real Orthanc 1.10.1, in the same run.

    python bench/transfers.py [--quick] [--repeat N] [--only ours|orthanc]

Both servers run at once, holding the same instances, and are measured in turns (ours first on
odd turns, Orthanc first on even ones), so a change in the machine's load weighs on both alike.
Cases:
* C-STORE SCU (``POST /modalities/sink/store`` of a study, synchronous) to DCMTK storescp,
  which drops what it receives: tiny instances and ~0.5 MB CT slices, instances/s;
* peer store (``POST /peers/receiver/store``) of a study of tiny instances to a receiving
  Orthanc, emptied between runs, instances/s;
* time from ``POST /jobs/{id}/cancel`` to the connection closed, for a store job stuck on a
  remote that accepts the TCP connection and never answers (Orthanc waits for its timeout).

TCP_NODELAY=1 is in the environment of storescp and Orthanc (DCMTK leaves Nagle's algorithm
on otherwise, and every small PDU waits for a delayed ACK).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from functools import partial
from pathlib import Path

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench`, `node` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Server, ct_instances, fmt, median, orthanc, our_node, ratio, tiny_instances, upload
from bench.orthanc_process import free_port, orthanc_binary, orthanc_process
from tests.support.dcmtk import dcmtk_tool

SINK_AET = "SINK"
SILENT_AET = "SILENT"
REMOTE_TIMEOUT = 5  # seconds: the silent modality's Timeout, which bounds Orthanc's wait
REQUEST_TIMEOUT = 600.0  # seconds a synchronous store may take
CANCEL_TARGET_MS = 100.0
TARGET_RATIO = 1.0


def run_sink(folder: Path, port: int) -> subprocess.Popen[bytes]:
    """DCMTK storescp that accepts and drops every instance."""
    command = [dcmtk_tool("storescp") or "storescp", "--ignore", "-od", str(folder), "--aetitle", SINK_AET, str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class SilentListener:
    """Accepts one connection at a time and never answers; notes when the other side closes it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.requested = threading.Event()  # bytes arrived on the current connection
        self.closed_at = 0.0  # time.monotonic() when the current connection was closed by the other side
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            connection, _ = self.socket.accept()
            with connection:
                while data := connection.recv(65536):
                    del data
                    self.requested.set()
                self.closed_at = time.monotonic()
                self.closed.set()

    def reset(self) -> None:
        self.requested.clear()
        self.closed.clear()


def store_rate(server: Server, path: str, study: str, count: int) -> float:
    """Instances/s of one synchronous store job of ``study``."""
    started = time.perf_counter()
    answer = httpx.post(f"{server.http_url}{path}", json=[study], timeout=REQUEST_TIMEOUT)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    assert answer.json()["InstancesCount"] == count, answer.text
    return count / elapsed


def cancel_ms(server: Server, listener: SilentListener, study: str) -> float:
    """From the cancel request to the connection to the silent remote closed."""
    listener.reset()
    job = httpx.post(
        f"{server.http_url}/modalities/silent/store", json={"Resources": [study], "Asynchronous": True}
    ).json()["ID"]
    if not listener.requested.wait(30):
        raise RuntimeError("the store job never reached the silent remote")
    asked = time.monotonic()
    httpx.post(f"{server.http_url}/jobs/{job}/cancel", content=b"").raise_for_status()
    if not listener.closed.wait(REMOTE_TIMEOUT * 4):
        raise RuntimeError("the connection to the silent remote was never closed")
    return (listener.closed_at - asked) * 1000


def spread(values: list[float]) -> str:
    return f"[{min(values):.0f}-{max(values):.0f}]" if values else "[-]"


def empty_receiver(url: str) -> None:
    for patient in httpx.get(f"{url}/patients").json():
        httpx.delete(f"{url}/patients/{patient}").raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few instances, one repeat")
    parser.add_argument("--repeat", type=int, help="measures per case (default 3, 1 with --quick)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    os.environ["TCP_NODELAY"] = "1"  # inherited by storescp and Orthanc
    if dcmtk_tool("storescp") is None or orthanc_binary() is None:
        print("DCMTK storescp and Orthanc are both needed (the sink and the receiving peer)")
        return 1
    servers: list[tuple[str, Callable[..., AbstractContextManager[Server]]]] = []
    if args.only != "orthanc":
        servers.append(("ours", partial(our_node, jobs=False)))
    if args.only != "ours":
        servers.append(("Orthanc", orthanc))
    sizes = {"tiny": 100, "ct": 20, "peer": 100} if args.quick else {"tiny": 1000, "ct": 200, "peer": 500}
    print(f"generating {sizes['tiny']} tiny, {sizes['ct']} CT and {sizes['peer']} peer instances ...", flush=True)
    data = {"tiny": tiny_instances(sizes["tiny"], "t"), "ct": ct_instances(sizes["ct"], "c")}
    data["peer"] = tiny_instances(sizes["peer"], "p")
    rates: dict[str, dict[str, list[float]]] = {}
    cancels: dict[str, list[float]] = {}
    listener = SilentListener()
    with tempfile.TemporaryDirectory(prefix="bench-transfers-") as temporary, ExitStack() as stack:
        folder = Path(temporary)
        sink_port = free_port()
        (folder / "sink").mkdir()
        (folder / "receiver").mkdir()
        sink = run_sink(folder / "sink", sink_port)
        stack.callback(sink.wait)
        stack.callback(sink.terminate)
        receiver = stack.enter_context(orthanc_process(folder / "receiver", aet="RECEIVER"))
        options = {
            "DicomModalities": {
                "sink": [SINK_AET, "127.0.0.1", sink_port],
                "silent": {"AET": SILENT_AET, "Host": "127.0.0.1", "Port": listener.port, "Timeout": REMOTE_TIMEOUT},
            },
            "OrthancPeers": {"receiver": [receiver.http_url]},
        }
        running: list[tuple[str, Server, dict[str, str]]] = []
        for label, start in servers:  # both run at once, measured in turns (the load changes alike)
            (folder / label).mkdir()
            server = stack.enter_context(start(folder / label, options))
            studies = {kind: trio.run(upload, server.http_url, instances) for kind, instances in data.items()}
            store_rate(server, "/modalities/sink/store", studies["tiny"], sizes["tiny"])  # warm-up
            running.append((label, server, studies))
        for turn in range(repeat):
            for label, server, studies in running if turn % 2 == 0 else running[::-1]:
                for kind in ("tiny", "ct"):
                    rate = store_rate(server, "/modalities/sink/store", studies[kind], sizes[kind])
                    rates.setdefault(label, {}).setdefault(f"C-STORE SCU {kind}", []).append(rate)
                empty_receiver(receiver.http_url)
                rate = store_rate(server, "/peers/receiver/store", studies["peer"], sizes["peer"])
                rates[label].setdefault("peer store", []).append(rate)
                cancels.setdefault(label, []).append(cancel_ms(server, listener, studies["tiny"]))
                shown = ", ".join(f"{case} {values[-1]:.0f}/s" for case, values in rates[label].items())
                print(f"turn {turn + 1}/{repeat} {label}: {shown}, cancel {cancels[label][-1]:.1f} ms", flush=True)
    print()
    print(f"medians of {repeat} turns; spread (min-max) in brackets")
    print(f"{'case':<22}{'ours/s':>9}{'Orthanc/s':>11}{'ratio':>7}{'target':>8}")
    for case in rates.get("ours", rates.get("Orthanc", {})):
        a = median(rates.get("ours", {}).get(case, []))
        b = median(rates.get("Orthanc", {}).get(case, []))
        quotient = ratio(a, b)
        verdict = "" if quotient is None else ("ok" if quotient >= TARGET_RATIO else "BELOW")
        print(
            f"{case:<22}{fmt(a, '.0f'):>9}{fmt(b, '.0f'):>11}{fmt(quotient, '.2f'):>7}{TARGET_RATIO:>8.1f}  {verdict}"
            f"  ours {spread(rates.get('ours', {}).get(case, []))}, Orthanc {spread(rates.get('Orthanc', {}).get(case, []))}"
        )
    a, b = median(cancels.get("ours", [])), median(cancels.get("Orthanc", []))
    verdict = "" if a is None else ("ok" if a < CANCEL_TARGET_MS else "ABOVE")
    print(
        f"{'cancel to closed, ms':<22}{fmt(a, '.1f'):>9}{fmt(b, '.1f'):>11}{fmt(ratio(a, b), '.3f'):>7}"
        f"{'<' + str(int(CANCEL_TARGET_MS)):>8}  (lower is better)  {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
