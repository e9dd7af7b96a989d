"""Metadata and attachments of resources, as Orthanc 1.10.1 answers them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
import trio

from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error


@pytest.fixture
def config_overrides() -> dict:
    return {"UserMetadata": {"my-metadata": 1098}}


@pytest.fixture
async def stored(http: httpx.AsyncClient) -> dict[str, str]:
    return (await http.post("/instances", content=make_dicom(patient_id="META"))).json()


def _assert_empty(answer: httpx.Response, status: int) -> None:
    assert answer.status_code == status and answer.content == b""


async def _change_types(http: httpx.AsyncClient) -> list[str]:
    return [c["ChangeType"] for c in (await http.get("/changes")).json()["Changes"]]


async def test_list_builtin_metadata(http: httpx.AsyncClient, stored) -> None:
    url = f"/instances/{stored['ID']}/metadata"
    names = (await http.get(url)).json()
    # Orthanc's order: by metadata number (IndexInSeries 1, ReceptionDate 2, RemoteAET 3, Origin 8...).
    assert names[:4] == ["IndexInSeries", "ReceptionDate", "RemoteAET", "Origin"]
    assert {"TransferSyntax", "SopClassUid", "RemoteIP"} <= set(names)
    expanded = (await http.get(url, params={"expand": ""})).json()
    assert expanded["Origin"] == "RestApi" and expanded["IndexInSeries"] == "1"
    numeric = (await http.get(url, params={"expand": "", "numeric": ""})).json()
    assert numeric["8"] == "RestApi" and numeric["1"] == "1"
    series = (await http.get(f"/series/{stored['ParentSeries']}/metadata", params={"expand": ""})).json()
    assert set(series) == {"LastUpdate", "RemoteAET"}
    assert list((await http.get(f"/patients/{stored['ParentPatient']}/metadata", params={"expand": ""})).json()) == [
        "LastUpdate"
    ]


async def test_get_one_metadata(http: httpx.AsyncClient, stored) -> None:
    base = f"/instances/{stored['ID']}/metadata"
    answer = await http.get(f"{base}/Origin")
    assert answer.text == "RestApi" and answer.headers["content-type"].startswith("text/plain")
    assert (await http.get(f"{base}/8")).text == "RestApi"  # by number
    _assert_empty(await http.get(f"{base}/ModifiedFrom"), 404)  # known, but not set
    _assert_empty(await http.get(f"{base}/my-metadata"), 404)
    assert_error(await http.get(f"{base}/origin"), 404, 7)  # names are case-sensitive
    assert_error(await http.get("/instances/nope/metadata/Origin"), 404, 17)
    assert_error(await http.get("/instances/nope/metadata"), 404, 17)
    assert_error(await http.get(f"/series/{stored['ID']}/metadata"), 404, 17)  # wrong level


async def test_user_metadata(http: httpx.AsyncClient, stored) -> None:
    base = f"/instances/{stored['ID']}/metadata"
    answer = await http.put(f"{base}/my-metadata", content="héllo".encode())
    assert answer.status_code == 200 and answer.content == b""
    assert (await http.get(f"{base}/1098")).text == "héllo"
    assert (await http.put(f"{base}/2000", content=b"n2000")).status_code == 200  # undeclared user number
    names = (await http.get(base)).json()
    assert names[-2:] == ["my-metadata", "2000"]
    assert (await http.get(base, params={"numeric": ""})).json()[-2:] == ["1098", "2000"]
    assert (await http.delete(f"{base}/my-metadata")).status_code == 200
    _assert_empty(await http.get(f"{base}/my-metadata"), 404)
    assert_error(await http.delete(f"{base}/my-metadata"), 404, 17)
    assert (await _change_types(http))[-3:] == ["UpdatedMetadata"] * 3
    # Metadata of other levels too.
    study = f"/studies/{stored['ParentStudy']}/metadata/my-metadata"
    assert (await http.put(study, content=b"on the study")).status_code == 200
    assert (await http.get(study)).text == "on the study"


async def test_metadata_writes_refused(http: httpx.AsyncClient, stored) -> None:
    base = f"/instances/{stored['ID']}/metadata"
    for name in ("Origin", "5", "1023", "65536"):
        _assert_empty(await http.put(f"{base}/{name}", content=b"x"), 403)
        _assert_empty(await http.delete(f"{base}/{name}"), 403)
    assert_error(await http.put(f"{base}/undeclared", content=b"x"), 404, 7)
    assert_error(await http.delete(f"{base}/undeclared"), 404, 7)
    assert_error(await http.put("/instances/nope/metadata/my-metadata", content=b"x"), 404, 17)
    # A built-in name is refused before the resource is even looked up, as in Orthanc.
    _assert_empty(await http.put("/instances/nope/metadata/Origin", content=b"x"), 403)
    assert (await http.get(f"{base}/Origin")).text == "RestApi"


async def test_dicom_attachment(http: httpx.AsyncClient) -> None:
    data = make_dicom(patient_id="ATT")
    stored = (await http.post("/instances", content=data)).json()
    base = f"/instances/{stored['ID']}/attachments"
    assert (await http.get(base)).json() == ["dicom"]
    assert (await http.get(base, params={"full": ""})).json() == {"dicom": 1}
    operations = (await http.get(f"{base}/dicom")).json()
    assert {"data", "size", "md5", "compressed-size", "is-compressed", "verify-md5"} <= set(operations)
    assert (await http.get(f"{base}/1")).json() == operations
    assert (await http.get(f"{base}/dicom/size")).text == str(len(data))
    assert (await http.get(f"{base}/dicom/compressed-size")).text == str(len(data))
    md5 = hashlib.md5(data).hexdigest()
    assert (await http.get(f"{base}/dicom/md5")).text == md5
    assert (await http.get(f"{base}/dicom/compressed-md5")).text == md5
    assert (await http.get(f"{base}/dicom/is-compressed")).text == "0"
    answer = await http.get(f"{base}/dicom/data")
    assert answer.content == data and answer.headers["content-type"] == "application/dicom"
    assert (await http.get(f"{base}/dicom/compressed-data")).content == data
    info = (await http.get(f"{base}/dicom/info")).json()
    assert info["ContentType"] == 1 and info["UncompressedSize"] == len(data) and info["UncompressedMD5"] == md5
    assert info["Uuid"] == (await http.get(f"/instances/{stored['ID']}")).json()["FileUuid"]
    assert (await http.post(f"{base}/dicom/verify-md5")).json() == {}
    assert (await http.get(f"/series/{stored['ParentSeries']}/attachments")).json() == []


async def test_attachment_errors(http: httpx.AsyncClient, stored) -> None:
    base = f"/instances/{stored['ID']}/attachments"
    assert_error(await http.get(f"{base}/nope"), 404, 7)
    assert_error(await http.get(f"{base}/DICOM/size"), 404, 7)
    assert_error(await http.get(f"{base}/dicom-until-pixel-data"), 404, 17)  # known name, nothing stored
    assert_error(await http.get("/instances/nope/attachments"), 404, 17)
    assert_error(await http.get("/instances/nope/attachments/dicom/data"), 404, 17)
    assert_error(await http.get(f"/studies/{stored['ID']}/attachments"), 404, 17)
    _assert_empty(await http.delete(f"{base}/dicom"), 403)
    _assert_empty(await http.put(f"{base}/dicom", content=b"x"), 403)
    assert_error(await http.delete(f"{base}/nope"), 404, 7)
    assert (await http.get(f"/instances/{stored['ID']}/file")).status_code == 200
    assert (await http.get(f"{base}/dicom/verify-md5")).status_code == 405


async def test_user_attachment(http: httpx.AsyncClient, stored, node) -> None:
    base = f"/studies/{stored['ParentStudy']}/attachments"
    answer = await http.put(f"{base}/1025", content=b"hello")
    assert answer.status_code == 200 and answer.json() == {}
    assert (await http.get(base, params={"full": ""})).json() == {"1025": 1025}
    data = await http.get(f"{base}/1025/data")
    assert data.content == b"hello" and data.headers["content-type"] == "application/octet-stream"
    assert (await http.get(f"{base}/1025/md5")).text == hashlib.md5(b"hello").hexdigest()
    first_uuid = (await http.get(f"{base}/1025/info")).json()["Uuid"]
    assert (await http.put(f"{base}/1025", content=b"replaced")).status_code == 200
    assert (await http.get(f"{base}/1025/data")).content == b"replaced"
    assert not node.files.path_of(first_uuid).exists()  # the replaced file is gone
    second_uuid = (await http.get(f"{base}/1025/info")).json()["Uuid"]
    assert (await http.delete(f"{base}/1025")).status_code == 200
    assert not node.files.path_of(second_uuid).exists()
    assert_error(await http.delete(f"{base}/1025"), 404, 17)
    assert (await _change_types(http))[-3:] == ["UpdatedAttachment"] * 3


async def test_compressed_storage(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path, StorageCompression=True))
    async with client_of(node) as http:
        data = make_dicom(patient_id="ZIP", pixels=b"\0\0" * 4000)
        stored = (await http.post("/instances", content=data)).json()
        base = f"/instances/{stored['ID']}/attachments/dicom"
        assert (await http.get(f"{base}/is-compressed")).text == "1"
        stored_size = int((await http.get(f"{base}/compressed-size")).text)
        assert stored_size < len(data) and (await http.get(f"{base}/size")).text == str(len(data))
        assert (await http.get(f"{base}/data")).content == data
        assert len((await http.get(f"{base}/compressed-data")).content) == stored_size
        assert (await http.post(f"{base}/verify-md5")).json() == {}


async def test_invalid_user_metadata_option(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await start_node(nursery, node_config(tmp_path, UserMetadata={"low": 5}))
    async with client_of(node) as http:
        stored = (await http.post("/instances", content=make_dicom())).json()
        body = assert_error(await http.get(f"/instances/{stored['ID']}/metadata/low"), 400, 3)
        assert body["Details"] == 'UserMetadata "low" must be a number between 1024 and 65535'
