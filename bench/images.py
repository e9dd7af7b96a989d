"""/instances/{id}/preview, our node next to Orthanc 1.10.1: requests/s with 1 and 4 client processes.

    python bench/images.py [--requests N] [--repeat N]

Two images, made here: a 512 x 512 16-bit CT (smooth anatomy-like gradients and noise, stored
uncompressed: the cost is the rendering and the PNG encoding) and the same slice as an 8-bit
JPEG baseline (the cost adds the JPEG decoding). Each server runs as its own process and gets
both files; each client is a process of its own with one keep-alive connection, sending
``requests`` GET /preview in a row. Figures are medians of ``repeat`` rounds.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import CTImageStorage, JPEGBaseline8Bit, generate_uid

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import CT_SIDE, Starter, _base, file_bytes, fmt, median, orthanc, our_node, ratio
from bench.orthanc_process import orthanc_binary

CLIENTS = (1, 4)
SERVERS = ("ours", "Orthanc")  # the names Server reports, in the table's order
SEED = 3
JPEG_QUALITY = 90
WARM_UP = 5


def ct_slice() -> np.ndarray:
    """512 x 512 signed 16-bit values shaped like a CT slice: a body, organs, noise."""
    rng = np.random.default_rng(SEED)
    y, x = np.mgrid[0:CT_SIDE, 0:CT_SIDE] - CT_SIDE / 2
    body = (x**2 / 200**2 + y**2 / 160**2) < 1
    organ = ((x - 60) ** 2 + (y + 20) ** 2) < 50**2
    values = np.where(body, 40 + 0.1 * x, -1000) + np.where(organ, 300, 0) + rng.normal(0, 12, body.shape)
    return values.astype(np.int16)


def _image_dataset(label: str) -> Dataset:
    ds = _base(CTImageStorage, f"IMG-{label}", generate_uid(), generate_uid(), 1)
    ds.Modality = "CT"
    ds.Rows = ds.Columns = CT_SIDE
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def ct_file() -> bytes:
    ds = _image_dataset("CT")
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = ct_slice().tobytes()
    return file_bytes(ds)


def jpeg_file() -> bytes:
    """The CT slice windowed to 8 bits and stored as JPEG baseline."""
    gray = np.clip((ct_slice().astype(np.float64) + 160) * 255 / 400, 0, 255).astype(np.uint8)
    codestream = io.BytesIO()
    Image.fromarray(gray).save(codestream, "JPEG", quality=JPEG_QUALITY)
    ds = _image_dataset("JPEG")
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([codestream.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _client(url: str, path: str, count: int) -> float:
    """One client process: ``count`` GETs on one keep-alive connection; seconds taken."""
    with httpx.Client(base_url=url, timeout=120) as http:
        for _ in range(WARM_UP):
            http.get(path).raise_for_status()
        start = time.perf_counter()
        for _ in range(count):
            answer = http.get(path)
            answer.raise_for_status()
        return time.perf_counter() - start


def measure(pool: ProcessPoolExecutor, url: str, path: str, clients: int, count: int) -> float:
    """Requests per second of ``clients`` processes sending ``count`` requests each."""
    start = time.perf_counter()
    futures = [pool.submit(_client, url, path, count) for _ in range(clients)]
    for future in futures:
        future.result()
    return clients * count / (time.perf_counter() - start)


def _upload(url: str, data: bytes) -> str:
    answer = httpx.post(f"{url}/instances", content=data, timeout=60)
    answer.raise_for_status()
    return str(answer.json()["ID"])


def run_server(start: Starter, folder: Path, count: int, pool: ProcessPoolExecutor) -> tuple[str, dict[str, float]]:
    files = {"CT 512x512 16-bit": ct_file(), "JPEG 512x512 8-bit": jpeg_file()}
    figures: dict[str, float] = {}
    with start(folder) as server:
        server_name = server.name
        paths = {name: f"/instances/{_upload(server.http_url, data)}/preview" for name, data in files.items()}
        for name, path in paths.items():
            for clients in CLIENTS:
                figures[f"{name}, {clients} client(s)"] = measure(pool, server.http_url, path, clients, count)
    return server_name, figures


def _spread(rates: list[float]) -> str:
    return f"{min(rates):.0f}-{max(rates):.0f}" if rates else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    servers: list[Starter] = [our_node]
    if orthanc_binary() is not None:
        servers.append(orthanc)
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-images-") as temporary, ProcessPoolExecutor(max(CLIENTS)) as pool:
        for run in range(args.repeat):
            for number, start in enumerate(servers):
                folder = Path(temporary) / f"run{run}-server{number}"
                folder.mkdir()
                name, figures = run_server(start, folder, args.requests, pool)
                for case, rate in figures.items():
                    results.setdefault(case, {}).setdefault(name, []).append(rate)
                print(
                    f"run {run + 1}/{args.repeat} {name}: " + ", ".join(f"{c}: {r:.0f}/s" for c, r in figures.items())
                )
    print(f"\nGET /instances/{{id}}/preview, requests/s, medians of {args.repeat} (min-max):")
    print(f"{'case':<34}{'ours':>16}{'Orthanc':>16}{'ratio':>8}")
    for case, by_server in results.items():
        ours, theirs = median(by_server.get("ours", [])), median(by_server.get("Orthanc", []))
        cells = [f"{fmt(median(rates), '.0f')} ({_spread(rates)})" for rates in (by_server.get(n, []) for n in SERVERS)]
        print(f"{case:<34}{cells[0]:>16}{cells[1]:>16}{fmt(ratio(ours, theirs), '.2f'):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
