"""Values in /tags as Orthanc 1.10.1 shows them: binary floats with 17 significant digits
(so that a long list of them is TooLong as there), the first tag only of an AT value,
and the length of a group named and shown even when it was read without its VR.

Each expectation was read off the real Orthanc with the same file.
"""

from __future__ import annotations

import struct

import httpx
import pytest
from pydicom.dataelem import DataElement
from pydicom.uid import ImplicitVRLittleEndian

from tests.support.datasets import dataset_part, make_dataset, to_bytes
from tests.support.rest import get_json, upload

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


async def test_binary_floats_are_printed_with_17_digits_and_can_be_too_long(http: httpx.AsyncClient) -> None:
    dataset = make_dataset()
    dataset.add(DataElement(0x00189219, "FD", [0.6] * 14))  # 14 x 19 characters: beyond 256
    dataset.add(DataElement(0x00189087, "FD", [0.6, 1e20, 1.5e-7, 123456789.123, -0.0, 1 / 3, 3.0]))
    dataset.add(DataElement(0x00189030, "FL", [0.679, 3.0]))
    dataset.add(DataElement(0x00189098, "FD", [float("inf"), -float("inf")]))
    instance = (await upload(http, dataset))["ID"]
    tags = await get_json(http, f"/instances/{instance}/tags")
    assert tags["0018,9219"] == {"Name": "TagAngleSecondAxis", "Type": "TooLong", "Value": None}
    short = await get_json(http, f"/instances/{instance}/tags?short")
    assert short["0018,9087"] == (
        "0.59999999999999998\\1e+20\\1.4999999999999999e-07\\123456789.123\\-0\\0.33333333333333331\\3"
    )
    assert short["0018,9030"] == "0.67900002002716064\\3"
    assert short["0018,9098"] == "inf\\-inf"


async def test_an_attribute_tag_value_shows_its_first_tag(http: httpx.AsyncClient) -> None:
    dataset = make_dataset(FrameIncrementPointer=[0x00540010, 0x00540020])
    instance = (await upload(http, dataset))["ID"]
    simplified = await get_json(http, f"/instances/{instance}/simplified-tags")
    assert simplified["FrameIncrementPointer"] == "0054,0010"


def element(tag: int, vr: bytes | None, value: bytes) -> bytes:
    """One little endian element as written: implicit VR when ``vr`` is None."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if vr is None:
        return head + struct.pack("<I", len(value)) + value
    if vr in (b"UN", b"OB"):
        return head + vr + struct.pack("<HI", 0, len(value)) + value
    return head + vr + struct.pack("<H", len(value)) + value


def spliced(data: bytes, before: int, raw: bytes) -> bytes:
    """``raw`` inserted in the dataset before the element ``before`` (pydicom drops group lengths)."""
    at = data.index(struct.pack("<HH", before >> 16, before & 0xFFFF), len(data) - len(dataset_part(data)))
    return data[:at] + raw + data[at:]


@pytest.mark.parametrize("implicit", [False, True])
async def test_group_lengths_are_named_and_read_as_numbers(http: httpx.AsyncClient, implicit: bool) -> None:
    """A private group length that says it is UN stays unread (Null), as in Orthanc; one
    written without a VR is a UL like any other group length."""
    dataset = make_dataset()
    dataset.add(DataElement(0x00090010, "LO", "SOME CREATOR"))
    if implicit:
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    data = to_bytes(dataset)
    data = spliced(data, 0x00090010, element(0x00090000, None if implicit else b"UN", struct.pack("<I", 64)))
    data = spliced(data, 0x00100010, element(0x00100000, None if implicit else b"UL", struct.pack("<I", 96)))
    instance = (await upload(http, data))["ID"]
    tags = await get_json(http, f"/instances/{instance}/tags")
    assert tags["0010,0000"] == {"Name": "GenericGroupLength", "Type": "String", "Value": "96"}
    private = {"Type": "String", "Value": "64"} if implicit else {"Type": "Null", "Value": None}
    assert tags["0009,0000"] == {"Name": "PrivateGroupLength", **private}
