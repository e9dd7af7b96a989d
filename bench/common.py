"""What every benchmark shares: both servers as processes on free loopback ports, measured alike.

    from bench.common import our_node, orthanc

    with our_node(folder, {"ConcurrentJobs": 2}) as server:   # folder: an existing, empty directory
        httpx.get(f"{server.http_url}/system")
        server.cpu_seconds()

Our node runs as ``python -m node cfg.json`` like Orthanc runs as its own binary: the
load generator then shares neither event loop nor GIL with the server, and both are
started, fed and stopped the same way. Storage lives in ``folder``, so a fresh folder
means an empty server.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

if __package__ in (None, ""):  # imported from a benchmark run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.orthanc_process import free_port, orthanc_process, stop, wait_ready

ROOT = Path(__file__).resolve().parents[1]
AET = "ORTHANC"
CT_SIDE = 512  # 512 x 512 x 16 bits: 0.5 MB of pixels
PEAK_SAMPLE_INTERVAL = 0.01  # s between two samples of a server's resident memory
TREE_REFRESH_INTERVAL = 0.5  # s between two listings of a server's worker processes


@dataclass(frozen=True)
class Server:
    name: str
    http_url: str
    dicom_port: int
    aet: str
    pid: int  # of the server process, for its CPU time and memory

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (Linux /proc): its process, the worker
        processes it runs, and those of them it has already waited for."""
        root = _stat(self.pid)
        total = sum(root[11:15])  # utime, stime, cutime, cstime
        for pid in descendants(self.pid):
            try:
                total += sum(_stat(pid)[11:13])
            except OSError:  # ended meanwhile: its time is in cutime once waited for
                continue
        return total / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[int]:
    """The numeric fields of /proc/<pid>/stat after the command name, from the state on (index 0)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *map(int, fields[1:])]  # the state is a letter


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, and by them, now (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = _stat(int(entry.name))[1]
        except OSError:  # ended meanwhile
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


Starter = Callable[[Path], AbstractContextManager[Server]]


@contextmanager
def our_node(
    folder: Path, options: dict[str, Any] | None = None, *, jobs: bool = True, members: int = 1
) -> Iterator[Server]:
    """Our node with storage in ``folder``; ``options`` are merged into its configuration.

    ``jobs`` false starts it with ``--no-jobs`` (no jobs restored from a previous run);
    ``members`` above 1 runs that many processes sharing its ports (``--members``), and
    names the server "ours xN".
    """
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "TemporaryDirectory": str(folder / "tmp"),
        "HttpBindAddress": "127.0.0.1",
        "DicomBindAddress": "127.0.0.1",
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AET,
        "StorageCompression": False,
        **(options or {}),
    }
    config_path = folder / "node.json"
    config_path.write_text(json.dumps(config))
    log = folder / "node.log"
    command = [sys.executable, "-m", "node", str(config_path)] + ([] if jobs else ["--no-jobs"])
    if members != 1:
        command += ["--members", str(members)]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=log_file)
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_ready(url, process, log)
        yield Server("ours" if members == 1 else f"ours x{members}", url, dicom_port, AET, process.pid)
    finally:
        stop(process)


@contextmanager
def orthanc(folder: Path, options: dict[str, Any] | None = None) -> Iterator[Server]:
    """Real Orthanc with storage in ``folder``; ``options`` are merged into its configuration."""
    with orthanc_process(folder, aet=AET, overrides=options) as running:
        yield Server("Orthanc", running.http_url, running.dicom_port, running.aet, running.process.pid)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


class PeakMemory:
    """Peak resident memory of a process and its worker processes over a span: the kernel's
    high-water mark of the process, and the sum over the process tree sampled every 10 ms."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        tree, listed = [self.pid], 0.0
        while not self._stop.wait(PEAK_SAMPLE_INTERVAL):
            if time.monotonic() - listed > TREE_REFRESH_INTERVAL:  # listing /proc costs more than sampling
                tree, listed = [self.pid, *descendants(self.pid)], time.monotonic()
            total = 0
            for pid in tree:
                try:
                    total += _status_kb(pid, "VmRSS")
                except (OSError, RuntimeError):  # ended, or a zombie without memory
                    continue
            self.sampled_kb = max(self.sampled_kb, total)

    def __enter__(self) -> PeakMemory:
        try:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.resettable = True
        except OSError:
            self.resettable = False
        self.before_kb = _status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        high_water = _status_kb(self.pid, "VmHWM") if self.resettable else 0
        self.peak_kb = max(self.sampled_kb, high_water)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours is not None and theirs else None


def fmt(value: float | None, spec: str) -> str:
    """A figure for a table; `-` when it was not measured."""
    return "-" if value is None else format(value, spec)


# -- data -------------------------------------------------------------------------


def file_bytes(ds: Dataset) -> bytes:
    """``ds`` as a Part-10 file in Explicit VR Little Endian."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _base(sop_class: str, patient: str, study: str, series: str, number: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = patient
    ds.PatientName = f"BENCH^{patient}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyDescription = "Ingest benchmark"
    ds.AccessionNumber = "ACC" + patient[-6:]
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    return ds


def tiny_instances(count: int, label: str) -> list[bytes]:
    """Small instances without pixels (about 600 bytes), in one series."""
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(count):
        ds = _base(SecondaryCaptureImageStorage, f"TINY-{label}", study, series, i + 1)
        ds.Modality = "OT"
        out.append(file_bytes(ds))
    return out


def ct_instances(count: int, label: str) -> list[bytes]:
    """CT slices of 512 x 512 16-bit pixels (about 0.5 MB each), in one series."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = bytes(range(256)) * (CT_SIDE * CT_SIDE * 2 // 256)
    out = []
    for i in range(count):
        ds = _base(CTImageStorage, f"CT-{label}", study, series, i + 1)
        ds.Modality = "CT"
        ds.FrameOfReferenceUID = frame
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 1
        ds.PixelSpacing = [0.5, 0.5]
        ds.Rows = ds.Columns = CT_SIDE
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.PixelData = pixels
        out.append(file_bytes(ds))
    return out


async def upload(url: str, instances: Iterable[bytes], clients: int = 4) -> str:
    """POST every instance with a few keep-alive clients (not timed); the ParentStudy of the last one."""
    source = iter(instances)
    study: list[str] = []
    lock = trio.Lock()

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            while True:
                async with lock:  # one generator shared by every client
                    data = next(source, None)
                if data is None:
                    return
                answer = await http.post("/instances", content=data, headers={"Content-Type": "application/dicom"})
                answer.raise_for_status()
                study[:] = [answer.json()["ParentStudy"]]

    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(client)
    return study[0]
