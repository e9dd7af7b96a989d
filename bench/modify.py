"""Modification throughput: one study rewritten by POST /studies/{id}/modify, ours against Orthanc 1.10.1.

    python bench/modify.py [--instances N] [--kind tiny|ct] [--repeat N] [--only ours|orthanc]

Each server is started once (a process on free loopback ports, fresh storage) and
given one study of N instances (default 500 small ones without pixels, or CT slices
of 0.5 MB with ``--kind ct``). Then, ``repeat`` times: a synchronous modify of the
study (a new StudyDescription; new UIDs, the source kept, as Orthanc does by
default) is timed from request to answer, and the new study is deleted again so
that every run starts from the same server. A one-instance study is modified first,
untimed, so that no run pays for first-use costs. Figures: instances rewritten per
second and the server's CPU time per instance, medians of the runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Server, Starter, ct_instances, fmt, median, orthanc, our_node, ratio, tiny_instances, upload
from bench.orthanc_process import orthanc_binary

TARGET = 1.0  # ours / Orthanc, instances per second


@dataclass(frozen=True)
class Run:
    rate: float  # instances per second
    cpu_ms: float  # server CPU per instance


def modify_once(server: Server, study: str, count: int, number: int) -> Run:
    body = {"Replace": {"StudyDescription": f"modified {number}"}}
    with httpx.Client(base_url=server.http_url, timeout=None) as http:
        cpu = server.cpu_seconds()
        start = time.perf_counter()
        answer = http.post(f"/studies/{study}/modify", json=body)
        seconds = time.perf_counter() - start
        cpu_ms = (server.cpu_seconds() - cpu) * 1000 / count
        answer.raise_for_status()
        created = answer.json()["ID"]
        instances = http.get(f"/studies/{created}/instances").json()
        if len(instances) != count:
            raise RuntimeError(f"{server.name}: the modified study has {len(instances)} instances, not {count}")
        http.delete(f"/studies/{created}").raise_for_status()
    return Run(count / seconds, cpu_ms)


def measure(start: Starter, folder: Path, instances: list[bytes], repeat: int) -> tuple[str, list[Run]]:
    with start(folder) as server:
        warm_up = trio.run(upload, server.http_url, tiny_instances(1, "warm-up"))
        modify_once(server, warm_up, 1, 0)
        study = trio.run(upload, server.http_url, instances)
        runs = []
        for number in range(repeat):
            run = modify_once(server, study, len(instances), number + 1)
            print(f"{server.name}: run {number + 1}/{repeat}: {run.rate:.0f} instances/s, {run.cpu_ms:.2f} ms CPU")
            runs.append(run)
        return server.name, runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500, help="instances in the study (default 500)")
    parser.add_argument("--kind", choices=["tiny", "ct"], default="tiny", help="small instances or 0.5 MB CT slices")
    parser.add_argument("--repeat", type=int, default=3, help="modifications per server (default 3)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    args = parser.parse_args(argv)
    starters: list[Starter] = []
    if args.only != "orthanc":
        starters.append(our_node)
    if args.only != "ours":
        if orthanc_binary() is None:
            print("Orthanc binary not found: measuring our node only")
        else:
            starters.append(orthanc)
    make = tiny_instances if args.kind == "tiny" else ct_instances
    print(f"generating a study of {args.instances} {args.kind} instances ...", flush=True)
    instances = make(args.instances, "modify")
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-modify-") as temporary:
        for number, start in enumerate(starters):
            folder = Path(temporary) / f"server{number}"
            folder.mkdir()
            name, runs = measure(start, folder, instances, args.repeat)
            results[name] = runs

    print(f"\n{args.instances} {args.kind} instances, synchronous /studies/{{id}}/modify, medians of {args.repeat}:")
    print(f"{'server':<10}{'instances/s':>13}{'CPU ms/instance':>17}")
    rates = {}
    for name, runs in results.items():
        rates[name] = median([r.rate for r in runs])
        print(f"{name:<10}{fmt(rates[name], '.0f'):>13}{fmt(median([r.cpu_ms for r in runs]), '.2f'):>17}")
    quotient = ratio(rates.get("ours"), rates.get("Orthanc"))
    if quotient is not None:
        print(f"ours / Orthanc: {quotient:.2f} (target >= {TARGET}) {'ok' if quotient >= TARGET else 'BELOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
