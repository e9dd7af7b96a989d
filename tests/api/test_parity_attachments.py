"""Metadata and attachments as Orthanc 1.10.1 serves them (each checked against it): ETags,
If-Match and CheckRevisions, attachments declared in UserContentType, compressing an attachment,
and the MD5 and sizes of compressed storage."""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import httpx
import pytest

from tests.support.datasets import make_dicom
from tests.support.rest import assert_error, get_json, upload

USER_OPTIONS: dict[str, Any] = {
    "UserMetadata": {"Sample": 1024},
    "UserContentType": {"sample": 1024, "pdf": [1025, "application/pdf"]},
}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _etag(revision: int, data: bytes) -> str:
    return f'"{revision}-{_md5(data)}"'


@pytest.fixture
async def instance(http: httpx.AsyncClient) -> str:
    return str((await upload(http, make_dicom()))["ID"])


@pytest.mark.parametrize("config_overrides", [USER_OPTIONS])
async def test_user_content_types(http: httpx.AsyncClient, instance: str) -> None:
    base = f"/instances/{instance}/attachments"
    for name in ("sample", "pdf"):
        put = await http.put(f"{base}/{name}", content=b"hello")
        assert put.status_code == 200 and put.json() == {} and put.headers["etag"] == _etag(0, b"hello")
    assert await get_json(http, base) == ["dicom", "sample", "pdf"]
    assert await get_json(http, f"{base}?full") == {"dicom": 1, "sample": 1024, "pdf": 1025}
    pdf = await http.get(f"{base}/pdf/data")
    assert pdf.content == b"hello" and pdf.headers["content-type"] == "application/pdf"
    info = await get_json(http, f"{base}/pdf/info")
    assert info["ContentType"] == 1025 and pdf.headers["content-disposition"] == f'filename="{info["Uuid"]}"'
    dicom = await http.get(f"{base}/dicom/data")
    assert dicom.headers["content-disposition"].endswith('.dcm"')
    assert (await http.get(f"{base}/sample/data")).headers["content-type"] == "application/octet-stream"


@pytest.mark.parametrize("config_overrides", [USER_OPTIONS])
async def test_etags_and_if_match(http: httpx.AsyncClient, instance: str) -> None:
    path = f"/instances/{instance}/metadata/Sample"
    assert (await http.put(path, content=b"one")).headers["etag"] == _etag(0, b"one")
    read = await http.get(path)
    assert read.text == "one" and read.headers["etag"] == _etag(0, b"one")
    unchanged = await http.get(path, headers={"If-None-Match": _etag(0, b"one")})
    assert unchanged.status_code == 304 and unchanged.content == b""
    # A stale or foreign ETag is a conflict, even without CheckRevisions; a malformed one error 3.
    for stale in ('"7-abc"', '"1-' + _md5(b"one") + '"', '"0-zzz"'):
        assert_error(await http.put(path, content=b"two", headers={"If-Match": stale}), 409, 43)
    body = assert_error(await http.put(path, content=b"two", headers={"If-Match": "0"}), 400, 3)
    assert body["Details"].endswith("but found: 0")
    replaced = await http.put(path, content=b"two", headers={"If-Match": _etag(0, b"one")})
    assert replaced.status_code == 200 and replaced.headers["etag"] == _etag(1, b"two")
    assert (await http.get(path)).headers["etag"] == _etag(0, b"two")  # nothing keeps revisions
    data = await http.get(f"/instances/{instance}/attachments/dicom/data")
    for what in ("data", "info", "md5", "size", "compressed-data", "is-compressed"):
        answer = await http.get(f"/instances/{instance}/attachments/dicom/{what}")
        assert answer.headers["etag"] == _etag(0, data.content), what


@pytest.mark.parametrize("config_overrides", [{**USER_OPTIONS, "CheckRevisions": True}])
async def test_check_revisions(http: httpx.AsyncClient, instance: str) -> None:
    assert (await get_json(http, "/system"))["CheckRevisions"] is True
    for path, first in (
        (f"/instances/{instance}/metadata/Sample", b"a1"),
        (f"/instances/{instance}/attachments/sample", b"a1"),
    ):
        assert (await http.put(path, content=first)).status_code == 200  # new: nothing to name
        assert_error(await http.put(path, content=b"a2"), 409, 43)
        body = assert_error(await http.delete(path), 409, 43)
        assert body["Details"] == 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'
        assert_error(await http.delete(path, headers={"If-Match": '"0-abc"'}), 409, 43)
        current = {"If-Match": _etag(0, first)}
        assert (await http.put(path, content=b"a2", headers=current)).headers["etag"] == _etag(1, b"a2")
        assert (await http.delete(path, headers={"If-Match": _etag(0, b"a2")})).status_code == 200


@pytest.mark.parametrize("config_overrides", [{"StorageCompression": True}])
async def test_compressed_storage(http: httpx.AsyncClient) -> None:
    data = make_dicom()
    instance = (await upload(http, data))["ID"]
    info = await get_json(http, f"/instances/{instance}/attachments/dicom/info")
    stored = (await http.get(f"/instances/{instance}/attachments/dicom/compressed-data")).content
    assert info["CompressedMD5"] == _md5(stored) and info["UncompressedMD5"] == _md5(data)
    assert (await http.get(f"/instances/{instance}/attachments/dicom/compressed-md5")).text == _md5(stored)
    stats = await get_json(http, "/statistics")
    assert stats["TotalDiskSize"] == str(len(stored)) and stats["TotalUncompressedSize"] == str(len(data))
    patient = await get_json(http, f"/instances/{instance}/patient")
    patient_stats = await get_json(http, f"/patients/{patient['ID']}/statistics")
    assert patient_stats["DicomDiskSize"] == str(len(stored))


async def test_compress_and_uncompress_an_attachment(http: httpx.AsyncClient, instance: str) -> None:
    base = f"/instances/{instance}/attachments/dicom"
    data = (await http.get(f"{base}/data")).content
    last = (await get_json(http, "/changes?last"))["Last"]
    assert (await http.post(f"{base}/compress")).json() == {}
    assert (await http.get(f"{base}/is-compressed")).text == "1"
    assert zlib.decompress((await http.get(f"{base}/compressed-data")).content) == data
    assert (await http.get(f"/instances/{instance}/file")).content == data
    assert (await http.post(f"{base}/uncompress")).json() == {}
    assert (await http.get(f"{base}/is-compressed")).text == "0"
    assert (await http.get(f"{base}/compressed-data")).content == data
    assert (await get_json(http, "/changes?last"))["Last"] == last  # no change is logged
    assert_error(await http.post(f"/instances/{instance}/attachments/nope/compress"), 404, 7)
    assert_error(await http.post(f"/instances/{instance}/attachments/1030/compress"), 404, 17)
