"""The Dictionary option: names usable in bodies, shown in /tags, VRs kept through files."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import trio
from pydicom import datadict

from node.dicom import dictionary
from node.dicom.dictionary import DictionaryEntry, parse_dictionary
from node.dicom.tags import parse_tag
from node.errors import ErrorCode, OrthancError
from tests.support.datasets import make_dataset, to_bytes
from tests.support.node import client_of, node_config, start_node

DICTIONARY = {
    "0405,0010": ["LO", "PrivateCreatorForMyCompany", 1, 1, "My Company"],
    "0405,1001": ["ST", "MyPrivateXMLTag", 1, 1, "My Company"],
    "0009,1001": ["DS", "Abnormality score", 1, 1, "Lunit"],
    "0008,9999": ["US", "MyPublicCounter", 1, 0],
}
SPEC_EXAMPLE = {
    "PrivateCreator": "My Company",
    "Tags": {
        "PatientName": "Love^Sarah",
        "PatientID": "7",
        "PrivateCreatorForMyCompany": "My Company",
        "MyPrivateXMLTag": "<xml><test>Testing</test></xml>",
    },
}


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"Dictionary": DICTIONARY}


@pytest.fixture
def clean_dictionary() -> Iterator[None]:
    """Pure tests install entries themselves; leave pydicom as it was."""
    yield
    dictionary.install([])


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    answer = await http.post("/tools/create-dicom", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


async def tags_of(http: httpx.AsyncClient, instance: str, fmt: str = "") -> dict[str, Any]:
    return (await http.get(f"/instances/{instance}/tags{fmt}")).json()


# --- With a node ----------------------------------------------------------------------------


async def test_spec_example_by_name_and_round_trip(http: httpx.AsyncClient) -> None:
    instance = await create(http, SPEC_EXAMPLE)
    tags = await tags_of(http, instance)
    assert tags["0405,0010"] == {"Name": "PrivateCreator", "Type": "String", "Value": "My Company"}
    assert tags["0405,1001"] == {
        "Name": "MyPrivateXMLTag",
        "PrivateCreator": "My Company",
        "Type": "String",
        "Value": "<xml><test>Testing</test></xml>",
    }
    simplified = await tags_of(http, instance, "?simplify")
    assert simplified["MyPrivateXMLTag"] == "<xml><test>Testing</test></xml>"
    assert simplified["PrivateCreator"] == "My Company"

    data = (await http.get(f"/instances/{instance}/file")).content
    element = pydicom.dcmread(io.BytesIO(data))[0x04051001]
    assert element.VR == "ST" and element.private_creator == "My Company"
    assert (await http.delete(f"/instances/{instance}")).status_code == 200
    again = await http.post("/instances", content=data)
    assert again.json()["ID"] == instance
    assert await tags_of(http, instance) == tags


async def test_creator_slot_is_written_for_the_block(http: httpx.AsyncClient) -> None:
    instance = await create(http, {"PrivateCreator": "My Company", "Tags": {"MyPrivateXMLTag": "x"}})
    tags = await tags_of(http, instance)
    assert tags["0405,0010"]["Value"] == "My Company" and tags["0405,1001"]["Name"] == "MyPrivateXMLTag"


async def test_dictionary_creator_when_the_body_gives_none(http: httpx.AsyncClient) -> None:
    instance = await create(http, {"Tags": {"Abnormality score": "3.5"}})
    tags = await tags_of(http, instance)
    assert tags["0009,0010"]["Value"] == "Lunit"
    assert tags["0009,1001"] == {
        "Name": "Abnormality score",
        "PrivateCreator": "Lunit",
        "Type": "String",
        "Value": "3.5",
    }
    data = (await http.get(f"/instances/{instance}/file")).content
    assert pydicom.dcmread(io.BytesIO(data))[0x00091001].VR == "DS"


async def test_existing_slot_decides_the_creator(http: httpx.AsyncClient) -> None:
    body = {"PrivateCreator": "My Company", "Tags": {"MyPrivateXMLTag": "x", "0405,0010": "Other Co"}}
    tags = await tags_of(http, await create(http, body))
    assert tags["0405,0010"]["Value"] == "Other Co"
    assert tags["0405,1001"]["PrivateCreator"] == "Other Co"
    assert tags["0405,1001"]["Name"] == "Unknown Tag & Data"  # the Dictionary names My Company's tag only


async def test_public_entry_by_name(http: httpx.AsyncClient) -> None:
    instance = await create(http, {"Tags": {"MyPublicCounter": "12\\13"}})
    assert (await tags_of(http, instance))["0008,9999"] == {
        "Name": "MyPublicCounter",
        "Type": "String",
        "Value": "12\\13",
    }


async def test_implicit_vr_file_gets_the_dictionary_vr(http: httpx.AsyncClient) -> None:
    """Implicit VR files carry no VR: the private dictionary of the Dictionary option gives it."""
    ds = make_dataset()
    ds.private_block(0x0405, "My Company", create=True).add_new(0x01, "ST", "implicit")
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    answer = await http.post("/instances", content=buffer.getvalue())
    tags = await tags_of(http, answer.json()["ID"])
    assert tags["0405,1001"] == {
        "Name": "MyPrivateXMLTag",
        "PrivateCreator": "My Company",
        "Type": "String",
        "Value": "implicit",
    }


async def test_default_private_creator(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, Dictionary=DICTIONARY, DefaultPrivateCreator="Lunit")
    context = await start_node(nursery, config)
    async with client_of(context) as http:
        tags = await tags_of(http, await create(http, {"Tags": {"0009,1001": "7"}}))
    assert tags["0009,0010"]["Value"] == "Lunit" and tags["0009,1001"]["Name"] == "Abnormality score"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"0405,1001": ["ST"]}, "The definition of the '0405,1001' dictionary entry is invalid."),
        ({"0010,0010": ["LO", "Name", 1, 1, "Creator"]}, None),
    ],
)
async def test_bad_dictionary_stops_the_start(nursery: trio.Nursery, tmp_path: Path, option, message) -> None:
    with pytest.raises(OrthancError) as caught:
        await start_node(nursery, node_config(tmp_path, Dictionary=option))
    assert caught.value.code == ErrorCode.BAD_FILE_FORMAT
    if message is not None:
        assert caught.value.details == message


# --- Pure ---------------------------------------------------------------------------------


def test_entry_defaults_and_multiplicity() -> None:
    entries = parse_dictionary(
        {"0009,1001": ["DS", "Score"], "0009,1002": ["LO", "Many", 2, 0, "X"], "0009,1003": ["LO", "Few", 1, 3, "X"]}
    )
    assert entries[0] == DictionaryEntry(0x00091001, "DS", "Score", 1, 1, None)
    assert [e.vm for e in entries] == ["1", "2-n", "1-3"]


@pytest.mark.parametrize(
    "value",
    [
        "LO",
        [],
        ["LO"],
        ["LO", "Name", 1, 1, "Creator", "extra"],
        ["XX", "Name"],
        ["LO", ""],
        ["LO", 3],
        ["LO", "Name", 0],
        ["LO", "Name", 3, 2],
        ["LO", "Name", "1"],
        ["LO", "Name", 1, 1, 7],
        ["LO", "Name", True],
    ],
)
def test_invalid_entries(value: Any) -> None:
    with pytest.raises(OrthancError) as caught:
        parse_dictionary({"0009,1001": value})
    assert caught.value.code == ErrorCode.BAD_FILE_FORMAT


def test_invalid_key() -> None:
    with pytest.raises(OrthancError):
        parse_dictionary({"PatientName": ["LO", "Name"]})


def test_install_replaces_the_previous_install(clean_dictionary: None) -> None:
    dictionary.install(parse_dictionary({"0010,0010": ["PN", "Renamed"], "0405,1001": ["ST", "First", 1, 1, "C"]}))
    assert int(parse_tag("Renamed")) == 0x00100010 and int(parse_tag("First")) == 0x04051001
    assert datadict.keyword_for_tag(0x00100010) == "Renamed"
    assert datadict.get_private_entry(0x04051101, "C")[2] == "First"  # any block of the creator

    dictionary.install(parse_dictionary({"0405,1002": ["LO", "Second", 1, 1, "C"]}))
    assert datadict.keyword_for_tag(0x00100010) == "PatientName" and int(parse_tag("PatientName")) == 0x00100010
    with pytest.raises(OrthancError) as caught:
        parse_tag("First")
    assert caught.value.code == ErrorCode.UNKNOWN_DICOM_TAG
    with pytest.raises(KeyError):
        datadict.get_private_entry(0x04051001, "C")
    assert dictionary.private_name(0x04051002, "C") == "Second"
    assert dictionary.private_name(0x04051002, "Other") is None
    assert dictionary.private_name(0x04050010, None) == "PrivateCreator"


def test_private_tags_survive_a_file_round_trip(clean_dictionary: None) -> None:
    """pydicom reading our files back needs no help: the creator is in the file."""
    dictionary.install(parse_dictionary(DICTIONARY))
    ds = make_dataset()
    ds.private_block(0x0405, "My Company", create=True).add_new(0x01, "ST", "kept")
    read = pydicom.dcmread(io.BytesIO(to_bytes(ds)))
    assert read[0x04051001].value == "kept" and read[0x04051001].name == "[MyPrivateXMLTag]"
