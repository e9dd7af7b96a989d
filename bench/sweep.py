"""The concurrency-limits sweep: throughput and latency of each server as the load doubles.

* HTTP: 1, 2, 4 ... 64 concurrent keep-alive clients repeating ``GET /instances/{id}/tags``
  of a CT slice for a fixed time (one client process each up to :data:`MAX_HTTP_PROCESSES`,
  then several connections per process).
* DICOM: as many concurrent storescu associations, each storing a few tiny instances.
* Jobs: ``ConcurrentJobs`` 1, 2, 4, 8 (the harness restarts both servers for each), and at
  each a batch of asynchronous archive, modify and C-STORE SCU jobs submitted at once.

Every step records the rate, the p50 and p99 latency and the errors by kind: a refused
connection or association (503, A-ASSOCIATE-RJ) is an error, a request without an answer
within the client's timeout is a ``timeout`` (hung). The knee of each curve is computed by
:func:`bench.report.knee`. A probe sends ``GET /system`` every 100 ms throughout
(:func:`bench.load.probe`), so that a starved event loop shows as a high p99.
"""

from __future__ import annotations

import time

import httpx

from bench.common import Server
from bench.figures import FileSet, delete_study
from bench.load import Load, http_load, storescu_load
from bench.report import SweepPoint

MAX_HTTP_PROCESSES = 16  # client processes; beyond, each process holds several connections
JOB_POLL_INTERVAL = 0.02  # s between two rounds of GET /jobs/{id}
JOB_TIMEOUT = 300.0  # s a batch of jobs may take
HTTP_SWEEP = "HTTP GET /tags"
DICOM_SWEEP = "DICOM C-STORE associations"
JOB_KINDS = ("archive", "modify", "store")
UNITS = {HTTP_SWEEP: "requests/s", DICOM_SWEEP: "instances/s", **{f"jobs {k}": "jobs/s" for k in JOB_KINDS}}


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def point(sweep: str, server: Server, concurrency: int, load: Load) -> SweepPoint:
    return SweepPoint(
        sweep=sweep,
        server=server.name,
        concurrency=concurrency,
        rate=load.rate,
        p50_ms=_ms(load.percentile(0.5)),
        p99_ms=_ms(load.percentile(0.99)),
        errors=load.errors,
        client_cpu=load.client_cpu,
    )


def http_sweep(server: Server, path: str, steps: tuple[int, ...], seconds: float) -> list[SweepPoint]:
    points = []
    for step in steps:
        processes = min(step, MAX_HTTP_PROCESSES)
        load = http_load(
            server.http_url, [("GET", path, None)], processes=processes, connections=step // processes, seconds=seconds
        )
        points.append(point(HTTP_SWEEP, server, step, load))
    return points


def dicom_sweep(
    server: Server, fileset: FileSet, steps: tuple[int, ...], per_association: int, tool: str
) -> list[SweepPoint]:
    """Each step stores new instances: what the step before stored is deleted first (untimed)."""
    points = []
    for step in steps:
        load = storescu_load(server, fileset.files[: step * per_association], step, tool)
        points.append(point(DICOM_SWEEP, server, step, load))
        delete_study(server, fileset.study_uid)
    return points


def _submit(http: httpx.Client, kind: str, study: str) -> str:
    if kind == "archive":
        answer = http.post(f"/studies/{study}/archive", json={"Asynchronous": True})
    elif kind == "modify":
        answer = http.post(
            f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "swept"}, "Asynchronous": True}
        )
    else:
        answer = http.post("/modalities/sink/store", json={"Resources": [study], "Asynchronous": True})
    answer.raise_for_status()
    return str(answer.json()["ID"])


def job_batch(server: Server, kind: str, study: str, count: int, concurrency: int) -> SweepPoint:
    """``count`` jobs of ``kind`` submitted at once; rate in jobs/s until the last succeeds, latency
    of each from its submission to the poll that saw it succeed."""
    with httpx.Client(base_url=server.http_url, timeout=60) as http:
        started = time.monotonic()
        submitted = {_submit(http, kind, study): time.monotonic() for _ in range(count)}
        latencies: list[float] = []
        deadline = started + JOB_TIMEOUT
        pending = dict(submitted)
        while pending and time.monotonic() < deadline:
            for job in list(pending):
                state = http.get(f"/jobs/{job}").json()["State"]
                if state == "Success":
                    latencies.append(time.monotonic() - pending.pop(job))
                elif state == "Failure":
                    raise RuntimeError(f"{server.name}: {kind} job failed: {http.get(f'/jobs/{job}').text}")
            time.sleep(JOB_POLL_INTERVAL)
        seconds = time.monotonic() - started
    errors = {"timeout": len(pending)} if pending else {}
    load = Load(len(latencies), seconds, latencies, errors, None, 1)
    return point(f"jobs {kind}", server, concurrency, load)
