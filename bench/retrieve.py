"""Query/retrieve as an SCU: our node against real Orthanc 1.10.1, retrieving from the same Orthanc.

    python bench/retrieve.py [--instances N] [--ct] [--repeat N] [--queries N] [--no-sync]

A source Orthanc holds one study of ``instances`` instances (tiny ones, or 0.5 MB CT slices
with ``--ct``). Two destinations ask it for the study by a synchronous
``POST /modalities/source/move`` (a C-MOVE whose sub-operations the source sends to the
destination that asked): our node (a DicomMoveScu job) and a second Orthanc. The time is
from the request to its answer, once every instance is stored at the destination
(instances/s); the study is deleted from the destination between runs. Then the latency of
one study-level ``POST /modalities/source/query`` (a C-FIND SCU, one association) from each
destination, the median of ``queries``. All three run as processes on free loopback ports,
with their default durability (``--no-sync``: SyncStorageArea off in both destinations; the
source sends one instance at a time and waits for its answer, so a destination that flushes
each file before answering pays the flush on every instance). Medians of ``repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

if __package__ in (None, ""):  # run as a script: make `bench`, `node` and `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Server, ct_instances, fmt, orthanc, our_node, ratio, tiny_instances, upload
from bench.orthanc_process import orthanc_binary

SOURCE_AET, OURS_AET, THEIRS_AET = "SOURCE", "DESTOURS", "DESTORTHANC"
LOOPBACK = "127.0.0.1"
REQUEST_TIMEOUT = 600.0  # seconds for one synchronous move
MOVE_TARGET = 1.0  # ours / Orthanc's instances per second, at least


def _declare(server: Server, name: str, aet: str, port: int) -> None:
    httpx.put(f"{server.http_url}/modalities/{name}", json=[aet, LOOPBACK, port], timeout=30).raise_for_status()


def _move_seconds(destination: Server, study_uid: str, study: str, count: int) -> float:
    """One synchronous C-MOVE of the study into ``destination``, from an empty start."""
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": study_uid}], "Timeout": 60}
    with httpx.Client(base_url=destination.http_url, timeout=REQUEST_TIMEOUT) as http:
        http.delete(f"/studies/{study}")
        started = time.perf_counter()
        http.post("/modalities/source/move", json=body).raise_for_status()
        elapsed = time.perf_counter() - started
        stored = http.get(f"/studies/{study}/instances").json()
    if len(stored) != count:
        raise RuntimeError(f"{destination.name}: {len(stored)} of {count} instances arrived")
    return elapsed


def _query_ms(destination: Server, patient: str, queries: int) -> float:
    body = {"Level": "Study", "Query": {"PatientID": patient, "StudyDescription": ""}}
    times = []
    with httpx.Client(base_url=destination.http_url, timeout=60) as http:
        for _ in range(queries):
            started = time.perf_counter()
            answer = http.post("/modalities/source/query", json=body)
            times.append(time.perf_counter() - started)
            answer.raise_for_status()
            http.delete(f"/queries/{answer.json()['ID']}")
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--ct", action="store_true", help="0.5 MB CT slices instead of tiny instances")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--no-sync", action="store_true", help="SyncStorageArea off in both destinations")
    args = parser.parse_args(argv)
    if orthanc_binary() is None:
        print("Orthanc binary not found: nothing to compare with")
        return 1
    kind = "ct" if args.ct else "tiny"
    files = (ct_instances if args.ct else tiny_instances)(args.instances, "RETRIEVE")
    with tempfile.TemporaryDirectory(prefix="bench-retrieve-") as scratch:
        root = Path(scratch)
        for name in ("source", "ours", "orthanc"):
            (root / name).mkdir()
        with orthanc(root / "source", {"DicomAet": SOURCE_AET, "DicomAlwaysAllowFind": True}) as source:
            study = trio.run(upload, source.http_url, files)
            tags = httpx.get(f"{source.http_url}/studies/{study}", timeout=30).json()
            study_uid, patient = tags["MainDicomTags"]["StudyInstanceUID"], tags["PatientMainDicomTags"]["PatientID"]
            common: dict[str, Any] = {"DicomModalities": {"source": [SOURCE_AET, LOOPBACK, source.dicom_port]}}
            if args.no_sync:
                common["SyncStorageArea"] = False
            with (
                our_node(root / "ours", {"DicomAet": OURS_AET, **common}) as ours,
                orthanc(root / "orthanc", {"DicomAet": THEIRS_AET, **common}) as theirs,
            ):
                _declare(source, "ours", OURS_AET, ours.dicom_port)
                _declare(source, "theirs", THEIRS_AET, theirs.dicom_port)
                rates: dict[str, list[float]] = {"ours": [], "Orthanc": []}
                for run in range(args.repeat):
                    for label, destination in (("ours", ours), ("Orthanc", theirs)):
                        seconds = _move_seconds(destination, study_uid, study, args.instances)
                        rates[label].append(args.instances / seconds)
                        print(f"run {run + 1}/{args.repeat} {label}: {rates[label][-1]:.0f} instances/s", flush=True)
                latency = {
                    label: _query_ms(server, patient, args.queries)
                    for label, server in (("ours", ours), ("Orthanc", theirs))
                }
    ours_rate, their_rate = statistics.median(rates["ours"]), statistics.median(rates["Orthanc"])
    print()
    print(f"{'case':<34}{'ours':>9}{'Orthanc':>9}{'ratio':>7}{'target':>8}")
    print(
        f"{f'C-MOVE {args.instances} {kind} (instances/s)':<34}{fmt(ours_rate, '.0f'):>9}{fmt(their_rate, '.0f'):>9}"
        f"{fmt(ratio(ours_rate, their_rate), '.2f'):>7}{fmt(MOVE_TARGET, '.1f'):>8}"
    )
    print(
        f"{'C-FIND SCU study query (ms)':<34}{fmt(latency['ours'], '.2f'):>9}{fmt(latency['Orthanc'], '.2f'):>9}"
        f"{fmt(ratio(latency['Orthanc'], latency['ours']), '.2f'):>7}{'':>8}  (ratio: Orthanc's time / ours)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
