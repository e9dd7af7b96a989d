"""Values whose VR an implicit VR file leaves open, shown as Orthanc 1.10.1 shows them (checked
against it): a private element that no dictionary names, and a US-or-SS element that no
PixelRepresentation of its own dataset settles, are unknown bytes (null); the elements around
them keep their values."""

from __future__ import annotations

from typing import Any

import httpx
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from tests.support.datasets import make_dataset
from tests.support.rest import upload

UNKNOWN_CREATOR = "NO DICTIONARY KNOWS ME"
KNOWN_CREATOR = "ELSCINT1"  # in DCMTK's private dictionary: 00e1,xx01 is DataDictionaryVersion
SETTLED = ("0028,0106", "0028,0120", "0060,3004")  # Smallest image pixel value, padding, histogram
NEVER_SETTLED = ("0028,1101", "0018,9810", "0028,0104")  # a palette descriptor, and two others


def _file(*, implicit: bool = True, pixel_representation: int | None = 0) -> Dataset:
    ds = make_dataset(patient_id="IMPLICIT")
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.add_new(0x00090010, "LO", UNKNOWN_CREATOR)
    ds.add_new(0x00091001, "LO", "a text")
    ds.add_new(0x00E10010, "LO", KNOWN_CREATOR)
    ds.add_new(0x00E11001, "US", 7)
    if pixel_representation is not None:
        ds.PixelRepresentation = pixel_representation
    for tag in (0x00280106, 0x00280120, 0x00603004, 0x00189810, 0x00280104):
        ds.add_new(tag, "US", 0xFFFF)
    ds.add_new(0x00281101, "US", [256, 0, 16])
    item = Dataset()
    item.add_new(0x00283002, "US", [256, 0, 16])  # LUTDescriptor: settled only by the item's own
    ds.VOILUTSequence = [item]
    return ds


async def _short_tags(http: httpx.AsyncClient, ds: Dataset) -> dict[str, Any]:
    stored = await upload(http, ds)
    answer: dict[str, Any] = (await http.get(f"/instances/{stored['ID']}/tags?short")).json()
    return answer


async def test_a_private_element_no_dictionary_names_is_null(http: httpx.AsyncClient) -> None:
    stored = await upload(http, _file())
    full = (await http.get(f"/instances/{stored['ID']}/tags")).json()
    unknown = full["0009,1001"]
    assert unknown == {"Name": "Unknown Tag & Data", "PrivateCreator": UNKNOWN_CREATOR, "Type": "Null", "Value": None}
    assert full["0009,0010"]["Value"] == UNKNOWN_CREATOR  # its creator slot keeps its text
    assert full["00e1,1001"]["Name"] == "DataDictionaryVersion" and full["00e1,1001"]["Value"] == "7"


async def test_us_or_ss_values_settled_by_the_pixel_representation(http: httpx.AsyncClient) -> None:
    tags = await _short_tags(http, _file(pixel_representation=1))
    assert [tags[key] for key in SETTLED] == ["-1", "-1", "-1"]  # SS with PixelRepresentation 1
    assert [tags[key] for key in NEVER_SETTLED] == [None, None, None]
    assert tags["0028,3010"] == [{"0028,3002": None}]  # the item has no PixelRepresentation of its own


async def test_us_or_ss_values_without_a_pixel_representation_are_null(http: httpx.AsyncClient) -> None:
    tags = await _short_tags(http, _file(pixel_representation=None))
    assert [tags[key] for key in (*SETTLED, *NEVER_SETTLED)] == [None] * 6


async def test_explicit_vr_files_keep_every_value(http: httpx.AsyncClient) -> None:
    tags = await _short_tags(http, _file(implicit=False, pixel_representation=None))
    assert tags["0009,1001"] == "a text"
    assert tags["0028,1101"] == "256\\0\\16" and tags["0028,0106"] == "65535"
