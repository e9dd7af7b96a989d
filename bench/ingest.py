"""Ingest throughput of our node against real Orthanc 1.10.1, in the same run.

    python bench/ingest.py [--quick] [--repeat N] [--only ours|orthanc] [--sync on|off|both]

Cases: POST /instances with 1 and 4 concurrent HTTP clients (httpx, keep-alive,
one connection each) and one DCMTK storescu association (TCP_NODELAY=1), each on
tiny instances without pixels and on ~0.5 MB CT images. Data is generated with
pydicom before any timing; every repeat starts both servers afresh on free
loopback ports with empty temporary storage, and the medians are printed.

Each case runs with durability on and off (``SyncStorageArea``, set alike on both
servers; on is the default of both): on, a store is acknowledged only once its file
and index entry are flushed to the disk, which costs fsyncs on the storage's disk
(the system's temporary folder).

Our node runs as a subprocess (`python -m node cfg.json`), like Orthanc: the load
generator then does not share the node's event loop and GIL, so the figures are
what a real client sees, and the two servers are measured the same way.

Our node with several members, and both servers on PostgreSQL, are measured by the harness
(``python -m bench``, :mod:`bench.deployments`), with the load in client processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Server, Starter, ct_instances, fmt, median, orthanc, our_node, ratio, tiny_instances
from bench.orthanc_process import orthanc_binary
from tests.support.dcmtk import dcmtk_tool

# Targets of issue 1 (ours / Orthanc) per case; cases without one are informative.
TARGETS = {("rest", 4, "tiny"): 1.0, ("rest", 4, "ct"): 1.0, ("storescu", 1, "tiny"): 0.7}


@dataclass(frozen=True)
class Case:
    method: str  # rest, storescu
    clients: int
    kind: str  # tiny, ct

    @property
    def name(self) -> str:
        how = f"REST x{self.clients}" if self.method == "rest" else f"storescu x{self.clients}"
        return f"{how:<12} {self.kind}"

    @property
    def target(self) -> float | None:
        return TARGETS.get((self.method, self.clients, self.kind))


@dataclass
class CaseData:
    """One case's instances, in memory for REST and as files for storescu."""

    case: Case
    instances: list[bytes]
    files: list[Path] = field(default_factory=list)


def generate(cases: list[Case], sizes: dict[str, int], folder: Path) -> list[CaseData]:
    """Distinct UIDs per case, so that the cases of one server run never collide."""
    out = []
    for number, case in enumerate(cases):
        make = tiny_instances if case.kind == "tiny" else ct_instances
        data = CaseData(case, make(sizes[case.kind], f"{number:06d}"))
        if case.method == "storescu":
            case_folder = folder / f"case{number}"
            case_folder.mkdir()
            for i, content in enumerate(data.instances):
                path = case_folder / f"{i:05d}.dcm"
                path.write_bytes(content)
                data.files.append(path)
        out.append(data)
    return out


# -- load -------------------------------------------------------------------------


async def _post_all(url: str, clients: int, instances: list[bytes]) -> float:
    """Seconds for `clients` keep-alive connections to POST every instance once."""
    shares = [instances[i::clients] for i in range(clients)]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Content-Type": "application/dicom"}
    connections = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for _ in range(clients)]
    try:
        for client in connections:  # open each connection before the clock starts
            (await client.get("/system")).raise_for_status()

        async def post_share(client: httpx.AsyncClient, share: list[bytes]) -> None:
            for content in share:
                response = await client.post("/instances", content=content, headers=headers)
                response.raise_for_status()
                status = response.json()["Status"]
                if status != "Success":
                    raise RuntimeError(f"unexpected upload status {status}")

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for client, share in zip(connections, shares, strict=True):
                nursery.start_soon(post_share, client, share)
        return time.perf_counter() - start
    finally:
        for client in connections:
            await client.aclose()


def storescu_seconds(server: Server, files: list[Path], storescu: str) -> float:
    """Seconds for one storescu association sending every file (process start included).

    TCP_NODELAY=1 is in the environment (see main): without it each C-STORE waits for a delayed ACK.
    """
    command = [storescu, "-aet", "BENCH", "-aec", server.aet, "127.0.0.1", str(server.dicom_port)]
    command += [str(f) for f in files]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "E:" in done.stderr:
        raise RuntimeError(f"storescu failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed


def instance_count(server: Server) -> int:
    return int(httpx.get(f"{server.http_url}/statistics", timeout=30).json()["CountInstances"])


def warm_up(server: Server) -> None:
    """First requests pay for imports and caches: keep them out of the figures."""
    trio.run(_post_all, server.http_url, 1, tiny_instances(10, "warmup"))


@dataclass(frozen=True)
class Measure:
    rate: float  # instances per second
    cpu_ms: float  # server CPU per instance, all its threads: robust on a shared machine


def run_cases(server: Server, data: list[CaseData], storescu: str | None) -> dict[Case, Measure]:
    """Every case against one freshly started server."""
    warm_up(server)
    expected = 10
    measures: dict[Case, Measure] = {}
    for item in data:
        case = item.case
        cpu_before = server.cpu_seconds()
        if case.method == "rest":
            seconds = trio.run(_post_all, server.http_url, case.clients, item.instances)
        elif storescu is not None:
            seconds = storescu_seconds(server, item.files, storescu)
        else:
            continue
        count = len(item.instances)
        expected += count
        measures[case] = Measure(count / seconds, 1000 * (server.cpu_seconds() - cpu_before) / count)
    stored = instance_count(server)
    if stored != expected:
        raise RuntimeError(f"{server.name} holds {stored} instances, expected {expected}")
    return measures


# -- report -----------------------------------------------------------------------

Results = dict[str, dict[Case, list[Measure]]]


def _median(measures: list[Measure], attribute: str) -> float | None:
    return median([getattr(m, attribute) for m in measures])


def report(cases: list[Case], results: Results, title: str) -> None:
    """One table per server of ours against Orthanc."""
    for name in (name for name in results if name != "Orthanc"):
        _report_one(cases, results, name, f"{title}, {name}")


def _report_one(cases: list[Case], results: Results, name: str, title: str) -> None:
    ours, theirs = results.get(name, {}), results.get("Orthanc", {})
    print(f"\n{title}")
    print(
        f"{'case':<18}{'ours/s':>8}{'Orthanc/s':>11}{'ratio':>7}{'target':>8}"
        f"{'CPU ms/inst ours':>18}{'Orthanc':>9}  runs/s (ours | Orthanc)"
    )
    for case in cases:
        a, b = _median(ours.get(case, []), "rate"), _median(theirs.get(case, []), "rate")
        quotient = ratio(a, b)
        verdict = ""
        if case.target is not None and quotient is not None:
            verdict = "ok" if quotient >= case.target else "BELOW"
        runs = " ".join(f"{m.rate:.0f}" for m in ours.get(case, [])) + " | "
        runs += " ".join(f"{m.rate:.0f}" for m in theirs.get(case, []))
        cpu_ours, cpu_theirs = _median(ours.get(case, []), "cpu_ms"), _median(theirs.get(case, []), "cpu_ms")
        print(
            f"{case.name:<18}{fmt(a, '.0f'):>8}{fmt(b, '.0f'):>11}{fmt(quotient, '.2f'):>7}"
            f"{fmt(case.target, '.1f'):>8}{fmt(cpu_ours, '.2f'):>18}{fmt(cpu_theirs, '.2f'):>9}  {runs} {verdict}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few instances, one repeat")
    parser.add_argument("--repeat", type=int, help="fresh server runs per target (default 3, 1 with --quick)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    parser.add_argument("--sync", choices=["on", "off", "both"], default="both", help="SyncStorageArea settings")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    # DCMTK (storescu, and Orthanc's DICOM server) leaves Nagle on unless told so; inherited by every child.
    os.environ["TCP_NODELAY"] = "1"
    sizes = {"tiny": 60, "ct": 30} if args.quick else {"tiny": 400, "ct": 200}

    storescu = dcmtk_tool("storescu")
    if storescu is None:
        print("DCMTK storescu not found: C-STORE cases skipped")
    with_orthanc = args.only != "ours" and orthanc_binary() is not None
    if args.only != "ours" and not with_orthanc:
        print("Orthanc binary not found: measuring our node only")
    settings = [s for s in ("on", "off") if args.sync in (s, "both")]
    servers: list[tuple[str, Starter]] = []
    for setting in settings:
        options = {"SyncStorageArea": setting == "on"}
        if args.only != "orthanc":
            servers.append((setting, partial(our_node, options=options, jobs=False)))
        if with_orthanc:
            servers.append((setting, partial(orthanc, options=options)))

    cases = [Case(m, c, k) for k in ("tiny", "ct") for m, c in (("rest", 1), ("rest", 4), ("storescu", 1))]
    results: dict[str, Results] = {setting: {} for setting in settings}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as temporary:
        folder = Path(temporary)
        print(f"generating data: {sizes['tiny']} tiny and {sizes['ct']} CT instances per case ...", flush=True)
        data = generate(cases, sizes, folder)
        for run in range(repeat):
            for number, (setting, start) in enumerate(servers):
                run_folder = folder / f"run{run}-server{number}"
                run_folder.mkdir()
                with start(run_folder) as server:
                    measures = run_cases(server, data, storescu)
                for case, measure in measures.items():
                    results[setting].setdefault(server.name, {}).setdefault(case, []).append(measure)
                shown = ", ".join(f"{' '.join(c.name.split())} {m.rate:.0f}/s" for c, m in measures.items())
                print(f"run {run + 1}/{repeat} {server.name} sync {setting}: {shown}", flush=True)
    for setting in settings:
        report(cases, results[setting], f"SyncStorageArea {setting}")
    print(f"\nmedians of {repeat} run(s) on {os.cpu_count()} CPUs; the load generator runs on the same machine.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
