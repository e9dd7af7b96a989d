"""Load generators that are not the bottleneck: client processes, each timed, their CPU counted.

    load = http_load(server.http_url, [("GET", "/system", None)] * 1000, processes=4)
    load.rate, load.percentile(0.99), load.client_cpu, load.errors

HTTP load comes from :mod:`bench.client` processes (one keep-alive connection each unless
told otherwise), DICOM load from DCMTK's storescu (one association per process). Every
process is ready (started, connected, bodies in memory) before the clock starts, and the
figure runs from the first client's start to the last one's end.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.client import cpu_seconds
from bench.common import ROOT, Server
from bench.report import percentile
from tests.support.dcmtk import without_nagle

Request = tuple[str, str, Path | None]  # method, path, file holding the body (or None)
HTTP_TIMEOUT = 60.0  # s a client waits for an answer before it counts the request as hung
PROBE_INTERVAL = 0.1  # s between two GET /system of the probe
PROBE_LONGEST = 3600.0  # s: a probe runs until it is stopped, at most this long
STORESCU_TIMEOUT = 120.0  # s one storescu process may take before it counts as hung
REJECTED = "Association Rejected"  # what storescu prints when the server refuses the association


@dataclass
class Load:
    """What the clients of one measure saw."""

    requests: int  # answered successfully
    seconds: float  # from the first client's start to the last one's end
    latencies: list[float] = field(repr=False)  # seconds, one per successful request
    errors: dict[str, int]  # by kind: an HTTP status, "timeout", "rejected", an exception name
    client_cpu: float | None  # CPU seconds of every client process while measuring (None: not known)
    processes: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, fraction: float) -> float | None:
        return percentile(self.latencies, fraction)

    def check(self) -> Load:
        """Itself, or an error naming what failed: a figure is only taken from a clean run."""
        if self.errors:
            raise RuntimeError(f"the clients met errors: {self.errors}")
        return self


def children_cpu() -> float:
    """CPU seconds of every child process waited for so far (the DCMTK tools, the clients)."""
    return cpu_seconds(resource.RUSAGE_CHILDREN)


class ClientGroup:
    """Started :mod:`bench.client` processes, each with its plan, waiting for ``go``."""

    def __init__(self, url: str, shares: Sequence[Sequence[Request]], plan: Mapping[str, object]) -> None:
        parts = urlsplit(url)
        self.processes: list[subprocess.Popen[str]] = []
        for share in shares:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.client"],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.processes.append(process)
            requests = [[method, path, None if file is None else str(file)] for method, path, file in share]
            self._write(process, json.dumps({"host": parts.hostname, "port": parts.port, **plan, "requests": requests}))
        for process in self.processes:
            assert process.stdout is not None
            if not json.loads(process.stdout.readline() or "{}").get("ready"):
                self.close()
                raise RuntimeError("a client process did not get ready")

    @staticmethod
    def _write(process: subprocess.Popen[str], line: str) -> None:
        assert process.stdin is not None
        process.stdin.write(line + "\n")
        process.stdin.flush()

    def go(self) -> None:
        for process in self.processes:
            self._write(process, "go")

    def stop(self) -> None:
        """End timed plans now."""
        for process in self.processes:
            if process.poll() is None:
                self._write(process, "stop")

    def results(self) -> Load:
        answers = []
        for process in self.processes:
            assert process.stdout is not None
            answers.append(json.loads(process.stdout.readline()))
        self.close()
        errors: dict[str, int] = {}
        for answer in answers:
            for kind, number in answer["errors"].items():
                errors[kind] = errors.get(kind, 0) + number
        latencies = [latency for answer in answers for latency in answer["latencies"]]
        return Load(
            requests=len(latencies),
            seconds=max(a["ended"] for a in answers) - min(a["started"] for a in answers),
            latencies=latencies,
            errors=errors,
            client_cpu=sum(a["cpu"] for a in answers),
            processes=len(answers),
        )

    def close(self) -> None:
        for process in self.processes:
            if process.stdin is not None and not process.stdin.closed:
                process.stdin.close()
            try:
                process.wait(timeout=HTTP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def http_load(
    url: str,
    requests: Sequence[Request],
    *,
    processes: int,
    connections: int = 1,
    seconds: float | None = None,
) -> Load:
    """``requests`` shared among ``processes`` client processes of ``connections`` each, once;
    or, with ``seconds``, repeated by every connection for that long."""
    shares = [requests] * processes if seconds else [requests[i::processes] for i in range(processes)]
    plan = {"connections": connections, "seconds": seconds, "interval": 0.0, "timeout": HTTP_TIMEOUT}
    group = ClientGroup(url, shares, plan)
    group.go()
    return group.results()


@contextmanager
def probe(url: str) -> Iterator[list[Load]]:
    """``GET /system`` every 100 ms while the block runs; the list then holds what it saw."""
    plan = {"connections": 1, "seconds": PROBE_LONGEST, "interval": PROBE_INTERVAL, "timeout": HTTP_TIMEOUT}
    group = ClientGroup(url, [[("GET", "/system", None)]], plan)
    found: list[Load] = []
    group.go()
    try:
        yield found
    finally:
        group.stop()
        found.append(group.results())


def _storescu(command: list[str], share: Sequence[Path]) -> tuple[float, str | None]:
    """(seconds, error kind or None) of one storescu process sending ``share``."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*command, *map(str, share)],
            capture_output=True,
            env=without_nagle(),
            timeout=STORESCU_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, "timeout"
    seconds = time.monotonic() - started
    text = done.stderr.decode(errors="replace")
    if done.returncode != 0 or "E:" in text:
        return seconds, "rejected" if REJECTED in text else "failed"
    return seconds, None


def storescu_load(server: Server, files: Sequence[Path], processes: int, tool: str) -> Load:
    """Every file sent by ``processes`` storescu processes at once, one association each.

    A storescu process reports no time per C-STORE: the latency noted for each of its
    instances is its whole run divided by the instances it sent (process start included).
    """
    shares = [files[i::processes] for i in range(processes)]
    command = [tool, "-aet", "BENCH", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)]
    cpu = children_cpu()
    started = time.monotonic()
    with ThreadPoolExecutor(processes) as pool:
        outcomes = list(pool.map(lambda share: _storescu(command, share), shares))
    seconds = time.monotonic() - started
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for share, (elapsed, error) in zip(shares, outcomes, strict=True):
        if error is None:
            latencies += [elapsed / len(share)] * len(share)
        else:
            errors[error] = errors.get(error, 0) + 1
    return Load(len(latencies), seconds, latencies, errors, children_cpu() - cpu, processes)
