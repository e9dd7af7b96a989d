"""Names of private tags, and keys of ?simplify, as Orthanc 1.10.1 gives them.

Orthanc names a private tag from DCMTK's private dictionary, under the exact creator of
its block; ?simplify keys every tag by that name, so tags it cannot name share the key
"Unknown Tag & Data" (the last one's value stays); a private sequence carries no
PrivateCreator. Each expectation was read off the real Orthanc with the same file.
"""

from __future__ import annotations

import httpx
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from tests.support.datasets import make_dataset
from tests.support.rest import get_json, upload


def private_dataset() -> Dataset:
    dataset = make_dataset()
    dataset.add(DataElement(0x00190010, "LO", "GEMS_ACQU_01"))
    dataset.add(DataElement(0x00191002, "SL", 888))  # NumberOfCellsInDetector
    dataset.add(DataElement(0x00191014, "SS", 7))  # a name written with a space in DCMTK's file
    dataset.add(DataElement(0x20010010, "LO", "Philips Imaging DD 001"))
    dataset.add(DataElement(0x20011001, "FL", 1.5))  # ChemicalShift
    dataset.add(DataElement(0x00290010, "LO", "NOBODY KNOWS ME"))
    dataset.add(DataElement(0x00291001, "LO", "first unknown"))
    dataset.add(DataElement(0x00291002, "LO", "second unknown"))
    item = Dataset()
    item.add(DataElement(0x00100010, "PN", "NESTED"))
    dataset.add(DataElement(0x00291003, "SQ", [item]))
    dataset.add(DataElement(0x00291004, "LO", "last unknown"))
    return dataset


async def test_private_tags_are_named_from_the_private_dictionary(http: httpx.AsyncClient) -> None:
    instance = (await upload(http, private_dataset()))["ID"]
    tags = await get_json(http, f"/instances/{instance}/tags")
    assert tags["0019,1002"] == {
        "Name": "NumberOfCellsInDetector", "PrivateCreator": "GEMS_ACQU_01", "Type": "String", "Value": "888",
    }  # fmt: skip
    assert tags["0019,1014"]["Name"] == "EndNumberForBaseline"
    assert tags["2001,1001"]["Name"] == "ChemicalShift"
    assert tags["0029,1001"] == {
        "Name": "Unknown Tag & Data", "PrivateCreator": "NOBODY KNOWS ME", "Type": "String", "Value": "first unknown",
    }  # fmt: skip
    assert tags["0029,1003"] == {  # a sequence: no PrivateCreator
        "Name": "Unknown Tag & Data",
        "Type": "Sequence",
        "Value": [{"0010,0010": {"Name": "PatientName", "Type": "String", "Value": "NESTED"}}],
    }


async def test_simplify_keys_tags_by_name_as_orthanc(http: httpx.AsyncClient) -> None:
    instance = (await upload(http, private_dataset()))["ID"]
    for path in (f"/instances/{instance}/tags?simplify", f"/instances/{instance}/simplified-tags"):
        simplified = await get_json(http, path)
        assert simplified["NumberOfCellsInDetector"] == "888"
        assert simplified["ChemicalShift"] == "1.5"
        assert simplified["Unknown Tag & Data"] == "last unknown"  # four tags, one key
        assert not any("," in key for key in simplified)
