"""Routes of Orthanc 1.10.1 that were missing: /tools/bulk-content and /tools/dicom-conformance.

bulk-content answers were compared with the real Orthanc's for the same bodies: without
Level, each known resource as GET /{level}/{id} shows it, in the order given, repeats
kept and unknown IDs left out, with its metadata unless Metadata is false; with Level, the
resources of that level reached up or down from each one, each once, in the order of
their IDs. Short wins over Full. The conformance statement is our own text.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.support.datasets import make_dataset
from tests.support.rest import assert_error, get_json, post, upload


@pytest.fixture
async def tree(http: httpx.AsyncClient) -> dict[str, Any]:
    """A patient with two studies (one of two series), four instances in all."""
    study_a, study_b, series = generate_uid(), generate_uid(), generate_uid()
    first = await upload(http, make_dataset(study_uid=study_a, series_uid=series))
    await upload(http, make_dataset(study_uid=study_a, series_uid=series, instance_number=2))
    await upload(http, make_dataset(study_uid=study_a))
    last = await upload(http, make_dataset(study_uid=study_b))
    return {"patient": first["ParentPatient"], "study": first["ParentStudy"], "instance": first["ID"], "other": last}


async def bulk(http: httpx.AsyncClient, body: Any) -> list[dict[str, Any]]:
    answer = await post(http, "/tools/bulk-content", body)
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()
    return result


async def test_resources_at_their_own_level(http: httpx.AsyncClient, tree: dict[str, Any]) -> None:
    study, instance = tree["study"], tree["instance"]
    answer = await bulk(http, {"Resources": [study, "unknown", instance, study]})
    assert [(r["ID"], r["Type"]) for r in answer] == [(study, "Study"), (instance, "Instance"), (study, "Study")]
    assert answer[0] == {
        **await get_json(http, f"/studies/{study}"),
        "Metadata": await get_json(http, f"/studies/{study}/metadata?expand"),
    }
    assert answer[1]["Metadata"]["Origin"] == "RestApi"
    short = await bulk(http, {"Resources": [study], "Metadata": False, "Short": True, "Full": True})
    assert "Metadata" not in short[0] and "0020,000d" in short[0]["MainDicomTags"]
    full = await bulk(http, {"Resources": [study], "Full": True})
    assert full[0]["MainDicomTags"]["0020,000d"]["Name"] == "StudyInstanceUID"


async def test_resources_at_a_level_of_interest(http: httpx.AsyncClient, tree: dict[str, Any]) -> None:
    instances = await bulk(http, {"Resources": [tree["study"], tree["patient"]], "Level": "Instance"})
    ids = [r["ID"] for r in instances]
    assert len(ids) == 4 and ids == sorted(ids)  # each once, by ID
    series = await bulk(http, {"Resources": [tree["patient"]], "Level": "series"})
    assert len(series) == 3 and all(r["Type"] == "Series" for r in series)
    patients = await bulk(http, {"Resources": [tree["instance"], tree["study"], "unknown"], "Level": "Patient"})
    assert [r["ID"] for r in patients] == [tree["patient"]]


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ("[]", 400, 8, "The body must contain a JSON object"),
        ("not json", 400, 8, "The body must contain a JSON object"),
        ({}, 400, 15, "List of strings expected in field: Resources"),
        ({"Resources": [1]}, 400, 15, "List of strings expected in field: Resources"),
        ({"Resources": [], "Level": 3}, 400, 15, "String value expected in field: Level"),
        ({"Resources": [], "Level": "Bad"}, 400, 3, None),
        ({"Resources": [], "Metadata": 1}, 400, 15, "Boolean value expected in field: Metadata"),
    ],
)
async def test_bad_bodies(http: httpx.AsyncClient, body: Any, status: int, code: int, details: str | None) -> None:
    assert_error(await post(http, "/tools/bulk-content", body), status, code, details)


async def test_dicom_conformance_statement(http: httpx.AsyncClient) -> None:
    answer = await http.get("/tools/dicom-conformance")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "CTImageStorage" in answer.text and "1.2.840.10008.5.1.4.1.1.2" in answer.text
    assert "1.2.840.10008.1.2.1" in answer.text  # a transfer syntax accepted
    await http.put("/tools/accepted-transfer-syntaxes", content='["1.2.840.10008.1.2"]')
    assert "1.2.840.10008.1.2.4.50" not in (await http.get("/tools/dicom-conformance")).text
