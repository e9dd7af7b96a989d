"""The image routes against the real Orthanc 1.10.1, on the shared scanner files and on generated ones.

Both servers get the same files; every answer Orthanc gives with a 200 must come from us with
the same status and content type and the same pixels (PNG and PAM decoded; lossy JPEG answers and
frames decoded from lossy codestreams within a tolerance, as two JPEG decoders may round apart),
the same numpy bytes and the same Matlab text. Where Orthanc cannot decode (JPEG 2000 without its
GDCM plugin, uncompressed YBR) we answer with the image: those are listed, not compared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from node.context import NodeContext
from tests.support.datasets import SHARED_TESTDATA, needs_testdata, to_bytes
from tests.support.frames import decoded_image, frames_dataset, loaded_numpy
from tests.support.node import client_of
from tests.support.orthanc import running_orthanc

FILES = [
    *(
        f"TransferSyntaxes/{name}"
        for name in sorted(p.name for p in (SHARED_TESTDATA / "TransferSyntaxes").glob("*.dcm"))
    ),
    "ColorTestMalaterre.dcm",
    "Implicit-vr-us-palette.dcm",
    "SignedCT.dcm",
    "Brainix/Epi/IM-0001-0001.dcm",
    "Knee/T1/IM-0001-0001.dcm",
    "Comunix/Pet/IM-0001-0001.dcm",
]
# Lossy codestreams: two JPEG decoders (DCMTK's IJG, libjpeg-turbo or libjpeg) may differ by a few levels.
LOSSY = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
LOSSY_TOLERANCE = 8  # levels of the 8-bit answers (a narrow window amplifies a 16-bit difference)
JPEG_TOLERANCE = 12  # levels between two JPEG encodings of the same image
IMAGE_QUERIES = (
    "preview",
    "image-uint8",
    "image-uint16",
    "image-int16",
    "rendered",
    "rendered?width=100&smooth=1",
    "rendered?height=333",
    "rendered?window-center=100&window-width=50&width=64&height=64",
    "frames/0/preview",
)
# Orthanc 1.10.1 without plugins cannot decode JPEG 2000: its 415/500 answers there are not compared.
UNDECODABLE_BY_ORTHANC = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91")
UNDECODABLE_STATUSES = (415, 500)
ACCEPTS = ("image/png", "image/x-portable-arbitrarymap")
OTHER_QUERIES = (
    "frames",
    "matlab",
    "frames/0/numpy",
    "numpy?rescale=0",
    "frames/0/raw",
    "frames/1/raw",
    "frames/1/preview",
)


@pytest.fixture
async def orthanc(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    with running_orthanc(tmp_path / "orthanc", aet="IMAGES") as server:
        async with httpx.AsyncClient(base_url=server.http_url, timeout=60) as client:
            yield client


@pytest.fixture
async def ours(node: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(node, timeout=60) as client:
        yield client


def _pixels(answer: httpx.Response) -> np.ndarray:
    if answer.headers["content-type"] == "image/x-portable-arbitrarymap":
        header, _, body = answer.content.partition(b"ENDHDR\n")
        fields = dict(line.split(b" ", 1) for line in header.splitlines()[1:])
        shape = (int(fields[b"HEIGHT"]), int(fields[b"WIDTH"]), int(fields[b"DEPTH"]))
        return np.frombuffer(body, ">u2" if int(fields[b"MAXVAL"]) > 255 else np.uint8).reshape(shape)
    return decoded_image(answer.content)


async def _compare(
    orthanc: httpx.AsyncClient,
    ours: httpx.AsyncClient,
    path: str,
    accept: str,
    tolerance: int,
    undecodable: bool = False,
) -> list[str]:
    theirs = await orthanc.get(path, headers={"Accept": accept})
    mine = await ours.get(path, headers={"Accept": accept})
    where = f"{path} [{accept}]"
    if theirs.status_code != 200:
        if mine.status_code == theirs.status_code or (undecodable and theirs.status_code in UNDECODABLE_STATUSES):
            return []
        return [f"{where}: {theirs.status_code} vs {mine.status_code}"]
    if mine.status_code != 200 or mine.headers["content-type"] != theirs.headers["content-type"]:
        return [f"{where}: ours {mine.status_code} {mine.headers.get('content-type')}"]
    kind = theirs.headers["content-type"]
    if kind.startswith("image/"):
        a, b = _pixels(theirs).astype(np.int64), _pixels(mine).astype(np.int64)
        if a.shape != b.shape:
            return [f"{where}: shape {a.shape} vs {b.shape}"]
        worst = int(np.abs(a - b).max()) if a.size else 0
        return [] if worst <= tolerance else [f"{where}: pixels differ by up to {worst}"]
    if kind == "application/octet-stream" and path.endswith(("numpy", "numpy?rescale=0")) and tolerance:
        a, b = loaded_numpy(theirs.content).astype(np.float64), loaded_numpy(mine.content).astype(np.float64)
        return [] if a.shape == b.shape and np.abs(a - b).max() <= tolerance else [f"{where}: arrays differ"]
    if tolerance and path.endswith("matlab"):
        return []
    return [] if theirs.content == mine.content else [f"{where}: bodies differ"]


async def _upload(client: httpx.AsyncClient, data: bytes) -> str:
    answer = await client.post("/instances", content=data)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


@needs_testdata
async def test_images_of_the_scanner_files(orthanc: httpx.AsyncClient, ours: httpx.AsyncClient) -> None:
    problems: list[str] = []
    for relative in FILES:
        data = (SHARED_TESTDATA / relative).read_bytes()
        instance = await _upload(orthanc, data)
        assert await _upload(ours, data) == instance
        syntax = (await orthanc.get(f"/instances/{instance}/metadata/TransferSyntax")).text
        tolerance = LOSSY_TOLERANCE if syntax in LOSSY else 0
        undecodable = syntax in UNDECODABLE_BY_ORTHANC
        base = f"/instances/{instance}"
        for query in IMAGE_QUERIES:
            for accept in ACCEPTS:
                problems += await _compare(orthanc, ours, f"{base}/{query}", accept, tolerance, undecodable)
            jpeg_tolerance = tolerance + JPEG_TOLERANCE
            problems += await _compare(orthanc, ours, f"{base}/{query}", "image/jpeg", jpeg_tolerance, undecodable)
        for query in OTHER_QUERIES:
            problems += await _compare(orthanc, ours, f"{base}/{query}", "*/*", tolerance, undecodable)
    assert not problems, "\n".join(problems)


async def test_images_of_generated_files(orthanc: httpx.AsyncClient, ours: httpx.AsyncClient) -> None:
    """Multi-frame, MONOCHROME1, signed, rescaled and windowed images, and bad requests."""
    rows, columns = np.mgrid[0:40, 0:50]
    ramp = (rows * 60 + columns * 13).astype(np.uint16)
    datasets = [
        frames_dataset(np.stack([ramp, ramp // 2, ramp * 3])),
        frames_dataset((ramp.astype(np.int32) - 1200).astype(np.int16), photometric="MONOCHROME1"),
        frames_dataset(
            ramp, bits_stored=12, RescaleSlope="1.5", RescaleIntercept="-100", WindowCenter="900", WindowWidth="700"
        ),
        frames_dataset((ramp % 256).astype(np.uint8)),
    ]
    problems: list[str] = []
    for dataset in datasets:
        data = to_bytes(dataset)
        instance = await _upload(orthanc, data)
        assert await _upload(ours, data) == instance
        base = f"/instances/{instance}"
        queries = [*IMAGE_QUERIES, "frames/2/rendered", "frames/2/image-uint16", "numpy", "numpy?compress=0"]
        queries += [
            "rendered?quality=0",
            "rendered?smooth=maybe",
            "rendered?width=-1",
            "frames/9/numpy",
            "frames/x/matlab",
        ]
        for query in queries:
            for accept in (*ACCEPTS, "text/html"):
                problems += await _compare(orthanc, ours, f"{base}/{query}", accept, 0)
        for query in OTHER_QUERIES:
            problems += await _compare(orthanc, ours, f"{base}/{query}", "*/*", 0)
    assert not problems, "\n".join(problems)
