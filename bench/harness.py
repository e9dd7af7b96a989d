"""One benchmark run: both servers side by side, every figure, the sweep, a results folder.

    python -m bench [--quick] [--repeat N] [--no-orthanc] [--no-sweep] [--no-deployments] [--out FOLDER]

Our node and real Orthanc 1.10.1 start on free loopback ports with the same configuration
(:data:`SHARED_OPTIONS`: ConcurrentJobs, durability, no authentication, storage on the same
file system) and TCP_NODELAY=1 for Orthanc and every DCMTK tool. Both get the same
generated data; then every group of figures (:data:`bench.figures.GROUPS`) is measured on
one server and then on the other, the first one alternating between groups and repeats so
that a change of the machine's load weighs on both alike. The concurrency sweep follows
(:mod:`bench.sweep`), then the jobs sweep, which restarts both servers for each
``ConcurrentJobs``, then the deployments (:mod:`bench.deployments`): tiny ingest on our node
with 1 and 2 members, on SQLite and on PostgreSQL, against Orthanc on SQLite and with its
PostgreSQL plugin. Without Orthanc (or PostgreSQL), our figures are measured alone and the
results say so.

The results folder (``bench/results/<timestamp>/`` unless ``--out``) holds ``results.md``
(the table, the sweep, the machine, how to read them), ``results.csv``, ``sweep.csv``,
``machine.json`` and ``plots/*.png``; a default run also copies it to
``bench/results/latest/``, the one results folder kept in git.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from bench import deployments, figures, machine, plots, sweep, transfers
from bench.common import ROOT, Server, orthanc, our_node, upload
from bench.figures import FULL, QUICK, RECEIVER, SINK_AET, Run, Sizes, tiny_instances
from bench.load import probe
from bench.orthanc_process import free_port, orthanc_binary, orthanc_process
from bench.report import (
    ORTHANC,
    OURS,
    SweepPoint,
    csv_text,
    knees,
    markdown_table,
    number,
    percentile,
    summarize,
    sweep_csv_text,
    sweep_markdown,
)
from tests.support.dcmtk import dcmtk_tool

RESULTS = ROOT / "bench" / "results"
LATEST = RESULTS / "latest"
DCMTK_TOOLS = ("storescu", "findscu", "movescu", "storescp")
PROBE_TARGET_MS = 100.0  # p99 of GET /system during the sweep, ours
# The same in both servers; each option not named here is at its default, the same in both.
SHARED_OPTIONS: dict[str, Any] = {
    "ConcurrentJobs": 2,
    "AuthenticationEnabled": False,
    "RemoteAccessAllowed": False,
    "SyncStorageArea": True,
    "StorageCompression": False,
    "SaveJobs": False,
    "JobsHistorySize": 1000,
    "DicomAlwaysAllowFind": True,
    "DicomAlwaysAllowMove": True,
}
WARM_UP_INSTANCES = 10
T = TypeVar("T")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@contextmanager
def both(folder: Path, options: dict[str, Any], with_orthanc: bool) -> Iterator[list[Server]]:
    """Ours and, if installed, Orthanc, each with its files in a folder of its own under ``folder``."""
    with ExitStack() as stack:
        servers = []
        for name, start in ((OURS, _ours), (ORTHANC, orthanc))[: 2 if with_orthanc else 1]:
            (folder / name).mkdir(parents=True)
            servers.append(stack.enter_context(start(folder / name, options)))
        yield servers


def _ours(folder: Path, options: dict[str, Any]) -> Any:
    return our_node(folder, options, jobs=False)


def warm_up(server: Server) -> None:
    """First requests pay for imports and caches on both servers: kept out of the figures."""
    trio.run(upload, server.http_url, tiny_instances(WARM_UP_INSTANCES, f"WARM-{server.name}"))


def guarded(run: Run, failures: list[str], what: str, action: Callable[[], T]) -> T | None:
    """What ``action`` returns, or None once its failure is noted: one broken figure must not
    lose the whole run."""
    started = time.monotonic()
    try:
        return action()
    except Exception as error:  # whatever broke, the other figures are still worth having
        failures.append(f"{what}: {error!r}\n{traceback.format_exc()}")
        run.note(f"{what} failed: {error!r} (see failures.log, and logs/ in the run's own folder)")
        return None
    finally:
        log(f"{what}: {time.monotonic() - started:.1f} s")


def run_groups(run: Run, servers: list[Server], failures: list[str]) -> None:
    for repeat in range(run.sizes.repeat):
        for number_, group in enumerate(figures.GROUPS):
            order = servers if (repeat + number_) % 2 == 0 else servers[::-1]
            for server in order:
                what = f"repeat {repeat + 1}/{run.sizes.repeat}, {group.__name__} on {server.name}"
                guarded(run, failures, what, partial(group, run, server))


def run_sweeps(
    run: Run, servers: list[Server], probes: dict[tuple[str, str], list[float]], failures: list[str]
) -> list[SweepPoint]:
    """The HTTP and DICOM sweeps on the running servers, each server under the /system probe."""
    points: list[SweepPoint] = []
    tool = run.tools["storescu"]
    steps = run.sizes.sweep_steps
    for server in servers:
        path = f"/instances/{run.loaded[server.name].ct_instance}/tags"
        with probe(server.http_url) as seen:
            http = partial(sweep.http_sweep, server, path, steps, run.sizes.sweep_seconds)
            points += guarded(run, failures, f"HTTP sweep on {server.name}", http) or []
            if tool is not None:
                per_association = run.sizes.stores_per_association
                dicom = partial(sweep.dicom_sweep, server, run.data.sweep, steps, per_association, tool)
                points += guarded(run, failures, f"DICOM sweep on {server.name}", dicom) or []
        probes[("concurrency sweep", server.name)] = seen[0].latencies
    return points


def run_job_sweep(
    run: Run, folder: Path, options: dict[str, Any], with_orthanc: bool,
    probes: dict[tuple[str, str], list[float]], failures: list[str],
) -> list[SweepPoint]:  # fmt: skip
    """For each ConcurrentJobs: both servers afresh, one study, batches of archive, modify and store jobs."""
    points: list[SweepPoint] = []
    instances = tiny_instances(run.sizes.job_study, "JOBS")

    def batches(server: Server, step: int) -> None:
        study = trio.run(upload, server.http_url, instances)
        with probe(server.http_url) as seen:
            for kind in sweep.JOB_KINDS:
                points.append(sweep.job_batch(server, kind, study, run.sizes.jobs_per_step, step))
        probes.setdefault(("jobs sweep", server.name), []).extend(seen[0].latencies)

    for step in run.sizes.job_steps:
        with both(folder / f"jobs-{step}", {**options, "ConcurrentJobs": step}, with_orthanc) as servers:
            for server in servers if step % 2 else servers[::-1]:
                what = f"jobs sweep, ConcurrentJobs {step}, on {server.name}"
                guarded(run, failures, what, partial(batches, server, step))
    return points


def _sink(stack: ExitStack, folder: Path) -> int:
    """DCMTK storescp that accepts and drops every instance: the C-STORE SCU and C-MOVE destination."""
    port = free_port()
    folder.mkdir()
    process = transfers.run_sink(folder, port)
    stack.callback(process.wait)
    stack.callback(process.terminate)
    return port


def keep_logs(folder: Path, into: Path) -> None:
    """The servers' logs, kept when a figure failed (the scratch folder is deleted)."""
    into.mkdir(exist_ok=True)
    for log_file in folder.rglob("*.log"):
        shutil.copyfile(log_file, into / "-".join(log_file.relative_to(folder).parts))


def commands(argv: list[str], tools: dict[str, str | None], options: dict[str, Any]) -> list[str]:
    """What the harness ran, as command lines (ports and files in angle brackets)."""
    peer = "-aet BENCH -aec ORTHANC 127.0.0.1 <port>"
    return [
        f"{Path(sys.executable).name} -m bench {' '.join(argv)}".strip(),
        f"{Path(sys.executable).name} -m node <folder>/node.json --no-jobs  (our node)",
        "TCP_NODELAY=1 Orthanc <folder>/orthanc.json  (no plugins, but in the deployments on PostgreSQL)",
        f"{Path(sys.executable).name} -m node <folder>/node.json --no-jobs --members 2  (the deployments)",
        f"shared configuration: {json.dumps(options)}",
        f"{Path(sys.executable).name} -m bench.client  (one per HTTP client process: http.client, keep-alive)",
        f"TCP_NODELAY=1 {tools['storescu']} {peer} <files>  (one per association)",
        f"TCP_NODELAY=1 {tools['findscu']} -S -k 0008,0052=STUDY -k StudyInstanceUID {peer}",
        f"TCP_NODELAY=1 {tools['movescu']} -S -aem {SINK_AET} -k 0008,0052=STUDY -k StudyInstanceUID=<uid> {peer}",
        f"TCP_NODELAY=1 {tools['storescp']} --ignore --aetitle {SINK_AET} <port>  (the sink)",
    ]


HOW_TO_READ = """\
How to read it: each row is one figure measured on both servers in the same run, in turns.
**Ours** and **Orthanc** are medians of N repeats (N in its column, ours / Orthanc), the
spreads the lowest and highest of them. **Ratio** is above 1 where ours is better: ours /
Orthanc for rates, Orthanc / ours for times and memory. Server CPU is the CPU seconds the
server spent during one measure (all its threads and worker processes), peak RSS its highest
resident memory then; client CPU is what the load generator's processes spent (the harness itself where
it sent the one request). **client-bound** flags a figure whose reference server (Orthanc) went
faster with one more client process: the clients, not the server, set that figure, and its
ratio says little. It is checked where a figure has several client processes: one client's
figure is its request-after-request rate by design, and the archive, modify, transfer and job
figures are one request whose work is all the server's. The sweep's knee is the highest
concurrency up to which each doubling still raised the throughput by 5 % and the p99 stayed
within 10x of one client's; errors are refused connections or associations (503,
A-ASSOCIATE-RJ), timeouts are hung ones.
"""


def write_results(
    out: Path, run: Run, points: list[SweepPoint], probes: dict[tuple[str, str], list[float]],
    described: dict[str, Any], failures: list[str], elapsed: float,
) -> None:  # fmt: skip
    rows = summarize(list(run.figures.values()), run.samples, run.checks)
    (out / "results.csv").write_text(csv_text(rows))
    (out / "sweep.csv").write_text(sweep_csv_text(points))
    (out / "machine.json").write_text(json.dumps(described, indent=2))
    if failures:
        (out / "failures.log").write_text("\n\n".join(failures))  # the servers' logs are in logs/
    drawn = plots.draw_all(out / "plots", rows, points)
    probe_lines = []
    for (where, server), latencies in probes.items():
        p99 = percentile(latencies, 0.99)
        p99_ms = None if p99 is None else p99 * 1000
        verdict = ""
        if server == OURS and p99_ms is not None:
            verdict = " ok" if p99_ms < PROBE_TARGET_MS else f" ABOVE the {PROBE_TARGET_MS:.0f} ms target"
        probe_lines.append(f"- {where}, {server}: p99 {number(p99_ms)} ms over {len(latencies)} probes{verdict}")
    found = knees(points)
    knee_lines = [f"- {name}, {server}: {value}" for (name, server), value in found.items()]
    text = [
        f"# Benchmark: our node and Orthanc 1.10.1, {datetime.now().isoformat(timespec='minutes')}",
        "",
        *(f"> **Note:** {note}" for note in run.notes),
        "",
        markdown_table(rows),
        HOW_TO_READ,
        "## Members",
        "",
        "The deployments' rows (ours with 1 and 2 members, each beside the same Orthanc): the gain of the",
        "second member, which needs a core of its own to show (this machine's cores are shared, see below).",
        "",
        *(deployments.scaling_lines(rows) or ["- not measured"]),
        "",
        "## Concurrency sweep",
        "",
        "Knees:",
        *knee_lines,
        "",
        "GET /system probe every 100 ms (the event loop never starved: ours under 100 ms at p99):",
        *probe_lines,
        "",
        sweep_markdown(points, sweep.UNITS),
        "## Plots",
        "",
        *(f"![{path.stem}](plots/{path.name})" for path in drawn),
        "",
        "## Machine",
        "",
        machine.markdown(described),
        f"Whole run: {elapsed:.0f} s.",
    ]
    (out / "results.md").write_text("\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, one repeat: under 3 minutes")
    parser.add_argument("--repeat", type=int, help="measures of each figure per server (default 3, 1 with --quick)")
    parser.add_argument("--no-orthanc", action="store_true", help="measure our node alone")
    parser.add_argument("--no-sweep", action="store_true", help="skip the concurrency and jobs sweeps")
    parser.add_argument(
        "--no-deployments", action="store_true", help="skip the members and PostgreSQL ingest (bench.deployments)"
    )
    parser.add_argument("--deployments-only", action="store_true", help="measure the deployments alone")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<timestamp>, copied to latest)")
    args = parser.parse_args(argv)
    began = time.monotonic()
    sizes: Sizes = QUICK if args.quick else FULL
    if args.repeat:
        sizes = replace(sizes, repeat=args.repeat)
    os.environ["TCP_NODELAY"] = "1"  # inherited by Orthanc and every DCMTK tool
    tools = {name: dcmtk_tool(name) for name in DCMTK_TOOLS}
    binary = orthanc_binary()
    with_orthanc = binary is not None and not args.no_orthanc
    out = args.out or RESULTS / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, ExitStack() as stack:
        folder = Path(scratch)
        described = machine.describe(folder, binary, tools["storescu"])
        log(f"generating data ({'quick' if args.quick else 'full'} run) in {folder}")
        data = figures.generate(folder / "data", sizes)
        sink_port = _sink(stack, folder / "sink") if tools["storescp"] else None
        options = dict(SHARED_OPTIONS)
        if sink_port is not None:
            options["DicomModalities"] = {"sink": [SINK_AET, "127.0.0.1", sink_port]}
        receiver_url = None
        if with_orthanc:
            (folder / "receiver").mkdir()
            receiver_url = stack.enter_context(orthanc_process(folder / "receiver", aet="RECEIVER")).http_url
            options["OrthancPeers"] = {RECEIVER: [receiver_url]}
        probes: dict[tuple[str, str], list[float]] = {}
        points: list[SweepPoint] = []
        run = Run(folder, sizes, data, {}, tools, receiver_url, ORTHANC if with_orthanc else OURS)
        if not with_orthanc:
            run.note(
                "Orthanc was not measured (" + ("--no-orthanc" if binary else "its binary is not installed")
                + "): our figures alone, no ratio."
            )  # fmt: skip
        if None in tools.values():
            run.note(
                "DCMTK tools missing ("
                + ", ".join(k for k, v in tools.items() if v is None)
                + "): their figures skipped."
            )
        if not args.deployments_only:
            with both(folder / "pair", options, with_orthanc) as servers:
                log("loading the same data into " + " and ".join(s.name for s in servers))
                run.loaded.update((server.name, figures.load(server, data)) for server in servers)
                for server in servers:
                    warm_up(server)
                run_groups(run, servers, failures)
                if not args.no_sweep:
                    points += run_sweeps(run, servers, probes, failures)
        if not args.no_sweep and not args.deployments_only:
            points += run_job_sweep(run, folder / "job-sweep", options, with_orthanc, probes, failures)
        if not args.no_deployments:
            deployments.run_deployments(run, folder / "deployments", options, with_orthanc, guarded, failures)
        if failures:
            keep_logs(folder, out / "logs")
    described["load_average_after"] = os.getloadavg()
    busiest = max(described["load_average_before"][0], described["load_average_after"][0])
    if busiest > (os.cpu_count() or 1):
        run.note(
            f"Other processes loaded the machine (load average up to {busiest:.1f} on {os.cpu_count()} cores): "
            "the figures are noisier than on an idle machine; the spreads show by how much."
        )
    described["commands"] = commands(argv, tools, SHARED_OPTIONS)
    write_results(out, run, points, probes, described, failures, time.monotonic() - began)
    if args.out is None:
        shutil.rmtree(LATEST, ignore_errors=True)
        shutil.copytree(out, LATEST, ignore=shutil.ignore_patterns("logs"))  # the servers' logs stay local
    log(f"results in {out}: results.md, results.csv, sweep.csv, machine.json, plots/")
    print((out / "results.md").read_text().split("\n## Concurrency sweep")[0])
    return 0
