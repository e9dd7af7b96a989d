"""XML answers stay well-formed whatever the keys and values they are built from: a key that
is not an element name (chosen by a client, a tag, a metadata number) becomes
`<member name="…">`, and characters XML cannot carry become U+FFFD."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx

from tests.support.datasets import make_dicom

XML = {"Accept": "application/xml"}
INJECTING_KEY = 'x><injected a="1"/><y'
REPLACEMENT = "\ufffd"


async def _xml(http: httpx.AsyncClient, path: str, **params: str) -> ET.Element:
    answer = await http.get(path, headers=XML, params=params)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    return ET.fromstring(answer.content)  # raises if the document is not well-formed


def _member(parent: ET.Element, name: str) -> ET.Element:
    found = [child for child in parent if child.tag == "member" and child.get("name") == name]
    assert len(found) == 1, ET.tostring(parent)
    return found[0]


async def test_user_data_keys_cannot_inject_markup(http: httpx.AsyncClient) -> None:
    patient = (await http.post("/instances", content=make_dicom())).json()["ParentPatient"]
    user_data = {INJECTING_KEY: "bell\x07 and\rreturn", "plain": ["one", None], "1st": {"\x00": "nul"}}
    body = {"Asynchronous": True, "UserData": user_data}
    job = (await http.post(f"/patients/{patient}/archive", json=body)).json()["ID"]

    root = await _xml(http, f"/jobs/{job}")
    assert not [element for element in root.iter() if element.tag == "injected" or "a" in element.attrib]
    data = root.find("UserData")
    assert data is not None
    assert _member(data, INJECTING_KEY).text == f"bell{REPLACEMENT} and\rreturn"
    assert [item.text for item in data.findall("plain/item")] == ["one", "null"]
    assert _member(_member(data, "1st"), REPLACEMENT).text == "nul"

    listing = await _xml(http, "/jobs", expand="")
    listed = [item.find("UserData") for item in listing.findall("item")]
    assert len(listed) == 1 and listed[0] is not None
    assert _member(listed[0], INJECTING_KEY).text == f"bell{REPLACEMENT} and\rreturn"


async def test_tags_and_metadata_numbers_parse(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom(patient_name="A\x01B<C>"))).json()
    tags = await _xml(http, f"/instances/{stored['ID']}/tags", short="")
    assert _member(tags, "0010,0010").text == f"A{REPLACEMENT}B<C>"
    full = await _xml(http, f"/instances/{stored['ID']}/tags")
    assert _member(full, "0010,0020").findtext("Name") == "PatientID"

    assert (await http.put(f"/instances/{stored['ID']}/metadata/1025", content=b"v\x1b1")).status_code == 200
    metadata = await _xml(http, f"/instances/{stored['ID']}/metadata", expand="")
    assert _member(metadata, "1025").text == f"v{REPLACEMENT}1"
    assert metadata.findtext("Origin") == "RestApi"  # valid names are kept as they are
