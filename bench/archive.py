"""Synchronous ZIP archive of one study: our node against real Orthanc 1.10.1, in the same run.

    python bench/archive.py [--instances N] [--large] [--repeat N] [--only ours|orthanc]

Both servers run as subprocesses on free loopback ports with fresh storage. One
study of N CT slices (512 x 512 x 16 bits, noisy phantom: deflate keeps about
two thirds of it) is uploaded, then GET /studies/{id}/archive is read to the end
R times. Figures: throughput in MB/s of DICOM data archived (uncompressed size /
seconds until the last byte), archive size, and the server's peak resident
memory during the archive (the kernel's high-water mark, reset just before).

``--large`` archives about 2 GB (4,100 slices) to check that our memory stays
bounded (target < 300 MB) while the archive is far bigger than that.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import struct
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import trio
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PeakMemory, Starter, file_bytes, orthanc, our_node, upload
from bench.orthanc_process import orthanc_binary

SIDE = 512
SLICE_BYTES = SIDE * SIDE * 2
LARGE_INSTANCES = 4100  # about 2.1 GB of DICOM
MEMORY_TARGET_MB = 300
THROUGHPUT_TARGET = 1.0  # ours / Orthanc
_MB = 1024 * 1024


# -- data ---------------------------------------------------------------------------


def phantom() -> bytes:
    """A noisy round body in a padded field of view: compresses like a CT slice, not like zeros or noise."""
    rng = random.Random(42)
    centre = SIDE / 2
    values = []
    for y in range(SIDE):
        for x in range(SIDE):
            distance = math.hypot(x - centre, y - centre)
            if distance >= SIDE / 2:
                values.append(0)  # outside the scanner's field of view: padding
            elif distance >= SIDE * 0.35:
                values.append(max(0, int(24 + rng.gauss(0, 12))))  # air around the body
            else:
                values.append(int(1064 + rng.gauss(0, 12)))
    return struct.pack(f"<{SIDE * SIDE}H", *values)


def ct_slice(base: bytes, study: str, series: str, number: int) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "ARCHIVE-BENCH"
    ds.PatientName = "BENCH^ARCHIVE"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDescription = "Archive benchmark"
    ds.AccessionNumber = "ACC1"
    ds.Modality = "CT"
    ds.SeriesDescription = f"Series {series[-4:]}"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0, 0, float(number)]
    ds.Rows = ds.Columns = SIDE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    shift = (number * 1034) % len(base)  # even: each slice differs, sample alignment kept
    ds.PixelData = base[shift:] + base[:shift]
    return file_bytes(ds)


def study_slices(count: int) -> Iterator[bytes]:
    """Generated on the fly: a 2 GB study is never held in the benchmark's memory."""
    base = phantom()
    study = generate_uid()
    series = [generate_uid() for _ in range(max(1, count // 500))]  # a few series of up to ~500 slices
    for number in range(count):
        yield ct_slice(base, study, series[number % len(series)], number + 1)


# -- measuring ----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    seconds: float
    archive_bytes: int
    peak_mb: float
    before_mb: float


def archive_once(url: str, study: str, pid: int, keep: Path | None = None) -> Run:
    """One archive read to the end (and written to ``keep`` if given, which costs a little time)."""
    with PeakMemory(pid) as memory, httpx.Client(base_url=url, timeout=None) as http:
        start = time.perf_counter()
        received = 0
        with http.stream("GET", f"/studies/{study}/archive") as answer, open(keep or os.devnull, "wb") as sink:
            answer.raise_for_status()
            for chunk in answer.iter_raw(1024 * 1024):
                received += len(chunk)
                if keep is not None:
                    sink.write(chunk)
        seconds = time.perf_counter() - start
    return Run(seconds, received, memory.peak_kb / 1024, memory.before_kb / 1024)


def verify(path: Path, count: int) -> str:
    """Every member's CRC checked by zipfile; the archive is deleted afterwards."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        bad = archive.testzip()
    with open(path, "rb") as raw:  # the ZIP64 end locator sits just before the end record
        raw.seek(max(0, path.stat().st_size - 65_600))
        zip64 = b"PK\x06\x07" in raw.read()
    path.unlink()
    if bad is not None or len(members) != count:
        raise RuntimeError(f"invalid archive: {len(members)} members (expected {count}), first bad {bad}")
    return f"{len(members)} members, CRCs ok, {'ZIP64' if zip64 else 'classic ZIP'}"


def measure(name: str, start: Starter, folder: Path, count: int, repeat: int, check: bool) -> list[Run]:
    folder.mkdir(parents=True)
    with start(folder) as server:
        began = time.perf_counter()
        study = trio.run(upload, server.http_url, study_slices(count))
        print(f"{name}: {count} slices uploaded in {time.perf_counter() - began:.1f} s", flush=True)
        runs = []
        for number in range(repeat):
            keep = folder / "check.zip" if check and number == 0 else None
            run = archive_once(server.http_url, study, server.pid, keep)
            runs.append(run)
            if keep is not None:
                print(f"{name}: archive {number + 1} checked: {verify(keep, count)}", flush=True)
            print(
                f"{name}: archive {number + 1}/{repeat}: {run.seconds:.2f} s, {run.archive_bytes / _MB:.0f} MB zip, "
                f"RSS {run.before_mb:.0f} -> peak {run.peak_mb:.0f} MB",
                flush=True,
            )
        return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500, help="slices in the study (default 500)")
    parser.add_argument("--large", action="store_true", help=f"about 2 GB: {LARGE_INSTANCES} slices")
    parser.add_argument("--repeat", type=int, default=3, help="archives per server (default 3)")
    parser.add_argument("--only", choices=["ours", "orthanc"], help="measure one server only")
    parser.add_argument("--check", action="store_true", help="save the first archive and check every CRC")
    args = parser.parse_args(argv)
    count = LARGE_INSTANCES if args.large else args.instances
    starters: list[tuple[str, Starter]] = []
    if args.only != "orthanc":
        starters.append(("ours", our_node))
    if args.only != "ours":
        if orthanc_binary() is None:
            print("Orthanc binary not found: measuring our node only")
        else:
            starters.append(("Orthanc", orthanc))

    dicom_mb = count * (SLICE_BYTES + 1024) / _MB  # each file: pixels plus a small header
    print(f"study of {count} slices, about {dicom_mb:.0f} MB of DICOM; {os.cpu_count()} CPUs")
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as temporary:
        for name, start in starters:
            results[name] = measure(name, start, Path(temporary) / name, count, args.repeat, args.check)

    print(f"\n{'server':<10}{'MB/s':>8}{'zip MB':>9}{'peak RSS MB':>13}{'RSS before':>12}  seconds per run")
    rates = {}
    for name, runs in results.items():
        seconds = statistics.median(r.seconds for r in runs)
        rates[name] = dicom_mb / seconds
        print(
            f"{name:<10}{rates[name]:>8.1f}{runs[0].archive_bytes / _MB:>9.0f}{max(r.peak_mb for r in runs):>13.0f}"
            f"{runs[0].before_mb:>12.0f}  " + " ".join(f"{r.seconds:.2f}" for r in runs)
        )
    if "ours" in rates and "Orthanc" in rates:
        ratio = rates["ours"] / rates["Orthanc"]
        verdict = "ok" if ratio >= THROUGHPUT_TARGET else "BELOW"
        print(f"throughput ours / Orthanc: {ratio:.2f} (target >= {THROUGHPUT_TARGET}) {verdict}")
    if "ours" in results:
        peak = max(r.peak_mb for r in results["ours"])
        verdict = "ok" if peak < MEMORY_TARGET_MB else "ABOVE"
        print(f"our peak RSS during the archive: {peak:.0f} MB (target < {MEMORY_TARGET_MB} MB) {verdict}")
    print("MB/s = MB of DICOM archived per second, median run; the machine may be shared, so figures vary.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
