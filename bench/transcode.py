"""Transcoding in an archive: a CT study archived in JPEG-LS and in JPEG 2000 lossless, our node
against real Orthanc 1.10.1, in the same run.

    python bench/transcode.py [--instances N] [--repeat N] [--only ours|orthanc]

Both servers run as subprocesses on free loopback ports with fresh storage. One study of N
CT slices (512 x 512 x 16 bits, the noisy phantom of bench/archive.py) is uploaded in
Explicit VR Little Endian, then ``GET /studies/{id}/archive?transcode=<syntax>`` is read to
the end ``repeat`` times per target. Figures: seconds until the last byte (median, and the
spread min-max), throughput in MB/s of DICOM data archived (uncompressed size / median
seconds), archive size, and the transfer syntax the archive's files came out in: Orthanc
1.10.1 has no JPEG 2000 encoder and copies the files unchanged there, so that row compares
transcoding with copying. Before them, one archive of a few slices in the first target, timed
apart ("first"): our node starts its codec worker processes then.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import trio
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.archive import SLICE_BYTES, study_slices
from bench.common import Starter, fmt, median, orthanc, our_node, ratio, upload
from bench.orthanc_process import orthanc_binary

TARGETS = {"JPEG-LS lossless": str(JPEGLSLossless), "JPEG 2000 lossless": str(JPEG2000Lossless)}
ARCHIVE_TIMEOUT = 3600.0  # seconds: a slow archive is measured, not cut
FIRST_INSTANCES = 4  # slices of the archive made before the measured ones
_MB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    seconds: float
    archive_bytes: int
    syntax: str  # of the archive's first file


def _first_syntax(path: Path) -> str:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if not n.endswith("/"))
        return str(pydicom.dcmread(io.BytesIO(archive.read(name)), stop_before_pixels=True).file_meta.TransferSyntaxUID)


def _archive(url: str, study: str, syntax: str, spool: Path) -> Run:
    started = time.perf_counter()
    with (
        httpx.Client(base_url=url, timeout=ARCHIVE_TIMEOUT) as http,
        open(spool, "wb") as file,
        http.stream("GET", f"/studies/{study}/archive", params={"transcode": syntax}) as answer,
    ):
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            file.write(chunk)
    seconds = time.perf_counter() - started
    return Run(seconds, spool.stat().st_size, _first_syntax(spool))


FIRST = "first"  # the key of the first, small archive


def measure(start: Starter, instances: int, repeat: int) -> dict[str, list[Run]]:
    """Every run of each target, and the first archive (of FIRST_INSTANCES slices) under FIRST."""
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp, start(Path(tmp)) as server:
        first = trio.run(upload, server.http_url, study_slices(FIRST_INSTANCES))
        study = trio.run(upload, server.http_url, study_slices(instances))
        spool = Path(tmp) / "archive.zip"
        runs = {FIRST: [_archive(server.http_url, first, next(iter(TARGETS.values())), spool)]}
        for name, syntax in TARGETS.items():
            runs[name] = [_archive(server.http_url, study, syntax, spool) for _ in range(repeat)]
        return runs


def _seconds(runs: list[Run]) -> tuple[float, float, float]:
    """Median, min and max seconds."""
    seconds = [run.seconds for run in runs]
    return median(seconds) or 0.0, min(seconds), max(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500, help="slices in the study (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="archives per target (default 3)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, list[Run]]] = {}
    if args.only != "orthanc":
        results["ours"] = measure(our_node, args.instances, args.repeat)
    if args.only != "ours":
        if orthanc_binary() is None:
            print("Orthanc is not installed: measuring our node only")
        else:
            results["orthanc"] = measure(orthanc, args.instances, args.repeat)
    print(f"{args.instances} CT slices, {args.instances * SLICE_BYTES / _MB:.0f} MB of pixels, {args.repeat} runs")
    first_target = next(iter(TARGETS))
    for server, by_target in results.items():
        print(
            f"first archive ({FIRST_INSTANCES} slices, {first_target}), {server}: {by_target[FIRST][0].seconds:.2f} s"
        )
    print(f"{'target':20} {'server':8} {'median s':>9} {'min-max s':>12} {'MB/s':>7} {'archive MB':>10}  files in")
    for name in TARGETS:
        for server, by_target in results.items():
            runs = by_target[name]
            middle, low, high = _seconds(runs)
            mbs = args.instances * SLICE_BYTES / _MB / middle
            size = runs[0].archive_bytes / _MB
            print(
                f"{name:20} {server:8} {middle:9.2f} {f'{low:.2f}-{high:.2f}':>12} {mbs:7.1f} {size:10.1f}  {runs[0].syntax}"
            )
        if len(results) == 2:
            mine, theirs = _seconds(results["ours"][name])[0], _seconds(results["orthanc"][name])[0]
            print(f"{name:20} {'ratio':8} {fmt(ratio(theirs, mine), '9.2f')}  (ours / Orthanc, MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
