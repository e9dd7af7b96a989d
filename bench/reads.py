"""Index reads while others write: the latency of one reader while 4 clients ingest, ours against
real Orthanc 1.10.1 in the same run.

    python bench/reads.py [--seconds S] [--instances N] [--repeat N] [--only ours|orthanc]

One client reads one small study (GET /studies/{id}: its resource, its children and its
tags, from the index) one request at a time, first alone, then while 4 other client
processes POST tiny instances of other studies as fast as they are answered. Every write
ends in a commit of the index (and, with SyncStorageArea on, the default of both, a flush
of its log), so the second figure shows how long a read waits behind the writes. Medians
of the reader's latencies are printed, with the 90th percentile, and the ingest rate.
Both servers run as processes on free loopback ports with fresh storage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make `bench` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Server, Starter, fmt, median, orthanc, our_node, ratio, tiny_instances
from bench.load import ClientGroup, Load, http_load
from bench.orthanc_process import orthanc_binary

WRITERS = 4  # client processes that ingest while the reader reads
PROBE_INSTANCES = 3  # in the study the reader reads
QUIET_READS = 500  # the reader's requests with nobody writing
HTTP_TIMEOUT = 60.0


def _study_of(server: Server, body: bytes) -> str:
    answer = httpx.post(f"{server.http_url}/instances", content=body, timeout=HTTP_TIMEOUT)
    answer.raise_for_status()
    return str(answer.json()["ParentStudy"])


def _reads_while_writing(server: Server, read: str, bodies: list[Path], seconds: float) -> tuple[Load, Load]:
    """(the reader's load, the writers' load): the reader reads until the writers are done."""
    reader = ClientGroup(
        server.http_url,
        [[("GET", read, None)]],
        {"connections": 1, "seconds": seconds * 10, "interval": 0.0, "timeout": HTTP_TIMEOUT},
    )
    writers = ClientGroup(
        server.http_url,
        [[("POST", "/instances", body) for body in bodies[i::WRITERS]] for i in range(WRITERS)],
        {"connections": 1, "seconds": None, "interval": 0.0, "timeout": HTTP_TIMEOUT},
    )
    reader.go()
    writers.go()
    written = writers.results()
    reader.stop()
    return reader.results().check(), written.check()


def measure(start: Starter, instances: int, seconds: float) -> dict[str, float | None]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bodies = []
        for i, body in enumerate(tiny_instances(instances, "W")):
            path = root / f"w{i}.dcm"
            path.write_bytes(body)
            bodies.append(path)
        storage = root / "server"
        storage.mkdir()
        with start(storage) as server:
            study = ""
            for body in tiny_instances(PROBE_INSTANCES, "R"):
                study = _study_of(server, body)
            read = f"/studies/{study}"
            quiet = http_load(server.http_url, [("GET", read, None)] * QUIET_READS, processes=1).check()
            loaded, written = _reads_while_writing(server, read, bodies, seconds)
    return {
        "quiet": statistics.median(quiet.latencies) * 1000,
        "loaded": statistics.median(loaded.latencies) * 1000,
        "loaded_p90": (loaded.percentile(0.9) or 0.0) * 1000,
        "reads": float(loaded.requests),
        "ingest_rate": written.rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000, help="instances the writers send")
    parser.add_argument("--seconds", type=float, default=30.0, help="longest the reader reads")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("ours", "orthanc"))
    args = parser.parse_args()
    servers: list[tuple[str, Starter]] = []
    if args.only != "orthanc":
        servers.append(("ours", our_node))
    if args.only != "ours" and orthanc_binary() is not None:
        servers.append(("Orthanc", orthanc))
    found: dict[str, list[dict[str, float | None]]] = {name: [] for name, _ in servers}
    for _ in range(args.repeat):
        for name, start in servers:
            found[name].append(measure(start, args.instances, args.seconds))
    keys = ("quiet", "loaded", "loaded_p90", "reads", "ingest_rate")
    medians = {
        name: {key: median([run[key] for run in runs if run[key] is not None]) for key in keys}
        for name, runs in found.items()
    }
    print(f"GET /studies/{{id}} by one client, alone and while {WRITERS} clients ingest; medians of {args.repeat}:")
    print(f"  {'server':8} {'alone ms':>9} {'loaded ms':>10} {'p90 ms':>8} {'reads':>7} {'ingest/s':>9}")
    for name, figures in medians.items():
        print(
            f"  {name:8} {fmt(figures['quiet'], '9.3f')} {fmt(figures['loaded'], '10.3f')} "
            f"{fmt(figures['loaded_p90'], '8.3f')} {fmt(figures['reads'], '7.0f')} {fmt(figures['ingest_rate'], '9.0f')}"
        )
    if "ours" in medians and "Orthanc" in medians:
        ours, theirs = medians["ours"], medians["Orthanc"]
        print(
            f"  ours / Orthanc: alone {fmt(ratio(ours['quiet'], theirs['quiet']), '.2f')}, "
            f"loaded {fmt(ratio(ours['loaded'], theirs['loaded']), '.2f')}"
        )


if __name__ == "__main__":
    main()
