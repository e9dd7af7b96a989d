"""/instances/{id}/content/7fe0-0010 lists the pieces of the Pixel Data as Orthanc 1.10.1 does.

Checked against the real Orthanc with the same files: a native value is one piece (the
whole value, all frames together); an encapsulated value lists its items, the Basic Offset
Table first, then every fragment (several per frame when the file has several). Only the
top-level Pixel Data is listed so: one inside a sequence (an icon) is a plain value.
"""

from __future__ import annotations

import httpx
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from tests.support.datasets import make_dataset
from tests.support.rest import get_json, upload

FRAME = 16  # 4 x 4 pixels of 8 bits


def image(frames: int) -> Dataset:
    dataset = make_dataset(pixels=b"\0\0")
    dataset.Rows = dataset.Columns = 4
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.NumberOfFrames = frames
    return dataset


async def pieces(http: httpx.AsyncClient, instance: str, path: str = "7fe0-0010") -> list[bytes]:
    listing = await get_json(http, f"/instances/{instance}/content/{path}")
    assert listing == [str(n) for n in range(len(listing))]
    answers = [await http.get(f"/instances/{instance}/content/{path}/{n}") for n in listing]
    assert all(a.status_code == 200 and a.headers["content-type"] == "application/octet-stream" for a in answers)
    beyond = await http.get(f"/instances/{instance}/content/{path}/{len(listing)}")
    assert beyond.status_code == 404
    return [a.content for a in answers]


async def test_native_pixel_data_is_one_piece(http: httpx.AsyncClient) -> None:
    dataset = image(frames=3)
    dataset.PixelData = bytes(range(3 * FRAME))
    instance = (await upload(http, dataset))["ID"]
    assert await pieces(http, instance) == [bytes(range(3 * FRAME))]
    assert (await http.get(f"/instances/{instance}/content/7fe0-0010/x")).status_code == 404
    assert (await http.get(f"/instances/{instance}/content/7fe0-0010/0/0")).status_code == 404


async def test_encapsulated_pixel_data_lists_offset_table_and_fragments(http: httpx.AsyncClient) -> None:
    dataset = image(frames=2)
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([b"AAAA" * 3, b"BBBBBB"], fragments_per_frame=2, has_bot=True)
    dataset["PixelData"].VR = "OB"
    instance = (await upload(http, dataset))["ID"]
    found = await pieces(http, instance)
    assert found[1:] == [b"AAAAAA", b"AAAAAA", b"BBBB", b"BB"]
    assert found[0] == bytes([0, 0, 0, 0, 28, 0, 0, 0])  # the offset of each frame


async def test_empty_offset_table_is_listed_too(http: httpx.AsyncClient) -> None:
    dataset = image(frames=2)
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([b"AAAA" * 3, b"BBBBBB"], fragments_per_frame=1, has_bot=False)
    dataset["PixelData"].VR = "OB"
    instance = (await upload(http, dataset))["ID"]
    assert await pieces(http, instance) == [b"", b"AAAA" * 3, b"BBBBBB"]


async def test_pixel_data_inside_a_sequence_is_a_plain_value(http: httpx.AsyncClient) -> None:
    dataset = image(frames=1)
    dataset.PixelData = bytes(FRAME)
    icon = Dataset()
    icon.Rows = icon.Columns = 2
    icon.PixelData = b"WXYZ"
    icon["PixelData"].VR = "OB"
    dataset.IconImageSequence = [icon]
    instance = (await upload(http, dataset))["ID"]
    answer = await http.get(f"/instances/{instance}/content/0088-0200/0/7fe0-0010")
    assert answer.content == b"WXYZ"
    assert (await http.get(f"/instances/{instance}/content/0088-0200/0/7fe0-0010/0")).status_code == 404
