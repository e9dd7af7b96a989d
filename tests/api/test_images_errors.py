"""Bad inputs of the image routes answer as Orthanc 1.10.1's (checked against it): the image routes
with empty 404/415 answers, the numpy, Matlab and raw routes with Orthanc's error JSON; a corrupt
codestream or an unknown syntax fails its request only."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML, JPEGLSLossless

from tests.support.datasets import make_dataset
from tests.support.frames import compressed, frames_dataset
from tests.support.rest import assert_error, upload

PIXELS = np.arange(16 * 16, dtype=np.uint16).reshape(16, 16)
IMAGE_ROUTES = ("preview", "rendered", "image-uint8", "image-uint16", "image-int16")


async def stored(http: httpx.AsyncClient, dataset: object) -> str:
    return str((await upload(http, dataset))["ID"])  # type: ignore[arg-type]


def assert_empty(answer: httpx.Response, status: int) -> None:
    assert (answer.status_code, answer.content) == (status, b""), answer.text


@pytest.fixture
async def instance(http: httpx.AsyncClient) -> str:
    return await stored(http, frames_dataset(PIXELS))


async def test_unknown_instance(http: httpx.AsyncClient) -> None:
    for route in IMAGE_ROUTES:
        assert_empty(await http.get(f"/instances/nope/{route}"), 404)
    for route in ("frames", "numpy", "matlab", "frames/0/raw", "frames/0/numpy"):
        assert_error(await http.get(f"/instances/nope/{route}"), 404, 17)
    assert_error(await http.get("/series/nope/numpy"), 404, 17)


async def test_frame_out_of_range_or_not_a_number(http: httpx.AsyncClient, instance: str) -> None:
    base = f"/instances/{instance}/frames"
    for frame in ("1", "abc", "-1"):
        for route in IMAGE_ROUTES:
            assert_empty(await http.get(f"{base}/{frame}/{route}"), 404)
    for route in ("raw", "raw.gz", "matlab", "numpy"):
        assert_error(await http.get(f"{base}/1/{route}"), 400, 3)
    for route in ("raw", "raw.gz", "matlab"):
        assert_empty(await http.get(f"{base}/abc/{route}"), 404)
    assert_error(await http.get(f"{base}/abc/numpy"), 400, 3, 'Expected an unsigned integer for the "frame" argument')


async def test_bad_arguments(http: httpx.AsyncClient, instance: str) -> None:
    base = f"/instances/{instance}"
    for query in ("width=-1", "width=abc", "height=5.5", "window-center=abc", "window-width=nan"):
        assert_empty(await http.get(f"{base}/rendered?{query}"), 404)
    for query in ("smooth=maybe", "smooth", "quality=0", "quality=101", "quality=abc"):
        assert_empty(await http.get(f"{base}/rendered?{query}"), 415)
    assert_empty(await http.get(f"{base}/preview?quality=0"), 415)
    assert (await http.get(f"{base}/rendered?window-width=inf&smooth=true&quality=50")).status_code == 200
    for name in ("rescale", "compress"):
        assert_error(
            await http.get(f"{base}/numpy?{name}=maybe"),
            400,
            3,
            f'Expected a Boolean for GET argument "{name}", found: maybe',
        )
    assert_empty(await http.get(f"{base}/rendered?width=100000000"), 404)


async def test_corrupt_codestream(http: httpx.AsyncClient) -> None:
    dataset = compressed(frames_dataset(PIXELS), JPEGLSLossless)
    dataset.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\x00" * 40])
    instance = await stored(http, dataset)
    for route in IMAGE_ROUTES:
        assert_empty(await http.get(f"/instances/{instance}/{route}"), 415)
    assert_error(await http.get(f"/instances/{instance}/numpy"), 400, 15)
    assert_error(await http.get(f"/instances/{instance}/matlab"), 400, 15)
    assert (await http.get(f"/instances/{instance}/frames/0/raw")).status_code == 200
    redirected = await http.get(f"/instances/{instance}/frames/0/preview?returnUnsupportedImage")
    assert (redirected.status_code, redirected.headers["location"]) == (301, "../../../../app/images/unsupported.png")
    assert (await http.get("/system")).status_code == 200


async def test_unsupported_syntax(http: httpx.AsyncClient) -> None:
    dataset = frames_dataset(PIXELS.astype(np.uint8))
    dataset.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    dataset.file_meta.TransferSyntaxUID = MPEG2MPML
    instance = await stored(http, dataset)
    assert_empty(await http.get(f"/instances/{instance}/preview"), 415)
    assert_error(await http.get(f"/instances/{instance}/frames/0/numpy"), 500, 2)


async def test_instance_without_pixel_data(http: httpx.AsyncClient) -> None:
    instance = await stored(http, make_dataset())
    assert (await http.get(f"/instances/{instance}/frames")).json() == [0]
    assert_empty(await http.get(f"/instances/{instance}/preview"), 415)
    assert_error(await http.get(f"/instances/{instance}/frames/0/raw"), 500, 2)
    assert_error(await http.get(f"/instances/{instance}/numpy"), 500, 2)


async def test_truncated_native_pixel_data(http: httpx.AsyncClient) -> None:
    dataset = frames_dataset(np.stack([PIXELS, PIXELS]))
    dataset.PixelData = dataset.PixelData[: PIXELS.nbytes + 10]
    instance = await stored(http, dataset)
    assert_empty(await http.get(f"/instances/{instance}/frames/1/preview"), 415)
    assert_error(await http.get(f"/instances/{instance}/frames/1/raw"), 400, 15)


async def test_bad_number_of_frames(http: httpx.AsyncClient) -> None:
    dataset = frames_dataset(PIXELS, NumberOfFrames="-3")
    instance = await stored(http, dataset)
    assert_error(await http.get(f"/instances/{instance}/frames"), 400, 15)
    assert_empty(await http.get(f"/instances/{instance}/preview"), 415)
