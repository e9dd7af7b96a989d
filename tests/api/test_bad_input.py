"""Bad input gets Orthanc's error JSON and leaves stored data intact."""

from __future__ import annotations

import httpx
import pytest

from tests.support.datasets import SHARED_TESTDATA, make_dataset, make_dicom, to_bytes
from tests.support.rest import assert_error, count_instances
from tests.support.storage import stored_files


async def test_empty_body(http: httpx.AsyncClient) -> None:
    body = assert_error(await http.post("/instances", content=b""), 400, 15)
    assert body["Details"] == "Received an empty DICOM file"


async def test_not_dicom(http: httpx.AsyncClient) -> None:
    body = assert_error(await http.post("/instances", content=b"hello world" * 20), 400, 15)
    assert body["Details"] == "Cannot parse an invalid DICOM file (size: 220 bytes)"
    assert await count_instances(http) == 0


async def test_truncated_file_stores_nothing(http: httpx.AsyncClient, node) -> None:
    await http.post("/instances", content=make_dicom(patient_id="KEEP"))
    data = make_dicom(pixels=b"\x01\x02" * 2000)
    assert_error(await http.post("/instances", content=data[: len(data) - 1500]), 400, 15)
    assert await count_instances(http) == 1
    stored = stored_files(node.files)
    assert len(stored) == 1


async def test_missing_and_empty_uids(http: httpx.AsyncClient) -> None:
    ds = make_dataset()
    del ds.SeriesInstanceUID
    assert_error(await http.post("/instances", content=to_bytes(ds)), 404, 21)
    ds = make_dataset()
    ds.SOPInstanceUID = ""
    body = assert_error(await http.post("/instances", content=to_bytes(ds)), 400, 15)
    assert body["Details"] == "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"


async def test_unknown_ids(http: httpx.AsyncClient) -> None:
    for path in ("/patients/nope", "/studies/nope"):
        answer = await http.get(path)
        assert answer.status_code == 404 and answer.content == b""
    for path in ("/instances/nope/file", "/instances/nope/tags"):  # Orthanc's JSON error on these
        assert_error(await http.get(path), 404, 17)
    assert (await http.delete("/series/nope")).status_code == 404
    body = assert_error(await http.get("/studies/nope/series"), 404, 17)
    assert "nope" in body["Details"]


async def test_wrong_level_is_unknown(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/instances", content=make_dicom())).json()
    assert (await http.get(f"/studies/{answer['ParentSeries']}")).status_code == 404


async def test_wrong_method_and_unknown_route(http: httpx.AsyncClient) -> None:
    answer = await http.put("/system")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET" and answer.content == b""
    answer = await http.delete("/instances")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET,POST"
    # Orthanc's error 17 for an unknown URI (checked on 1.10.1).
    assert_error(await http.get("/no/such/route"), 404, 17)


async def test_method_override(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/instances", content=make_dicom())).json()
    deleted = await http.post(f"/instances/{answer['ID']}", headers={"X-HTTP-Method-Override": "DELETE"})
    assert deleted.status_code == 200
    assert await count_instances(http) == 0


@pytest.mark.skipif(not SHARED_TESTDATA.is_dir(), reason="../shared/testdata is absent (scanner samples)")
async def test_deeply_nested_sequence(http: httpx.AsyncClient) -> None:
    data = (SHARED_TESTDATA / "2026-05-06-Deeply-Nested-Sequence.dcm").read_bytes()
    body = assert_error(await http.post("/instances", content=data), 400, 15)
    assert "nested" in body["Details"]
    assert (await http.post("/instances", content=make_dicom())).json()["Status"] == "Success"
