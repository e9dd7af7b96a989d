"""POST /{patients,studies,series}/{id}/{modify,anonymize}, served by the fast path: the shapes
of its answers (JSON or XML, a final slash), the order of its refusals, and what stays the app's."""

from __future__ import annotations

import httpx

from node.context import NodeContext
from tests.support.datasets import make_dicom
from tests.support.jobs import finished
from tests.support.rest import assert_error, upload

MODIFY = {"Replace": {"StudyDescription": "fast"}, "Asynchronous": True}


async def test_a_submission_answers_alike_in_every_shape(node: NodeContext, http: httpx.AsyncClient) -> None:
    study = (await upload(http, make_dicom()))["ParentStudy"]
    plain = await http.post(f"/studies/{study}/modify", json=MODIFY)
    slashed = await http.post(f"/studies/{study}/modify/", json=MODIFY)
    as_xml = await http.post(f"/studies/{study}/modify", json=MODIFY, headers={"Accept": "application/xml"})
    assert plain.status_code == slashed.status_code == as_xml.status_code == 200
    assert plain.headers["content-type"] == "application/json; charset=utf-8"
    assert set(plain.json()) == set(slashed.json()) == {"ID", "Path"}
    assert as_xml.headers["content-type"] == "application/xml; charset=utf-8"
    assert as_xml.text.startswith("<?xml") and "<Path>/jobs/" in as_xml.text
    job = await finished(node, plain.json()["ID"])
    assert job.job.content()["Type"] == "Study"
    synchronous = await http.post(f"/studies/{study}/anonymize", json={})
    assert synchronous.status_code == 200 and synchronous.json()["Type"] == "Study"


async def test_a_bad_body_is_refused_before_an_unknown_resource(http: httpx.AsyncClient) -> None:
    assert_error(
        await http.post("/studies/nope/modify", content=b"{"), 400, 15, "The body of the request is not valid JSON"
    )
    deep = b"[" * 1000 + b"]" * 1000
    assert_error(await http.post("/series/nope/anonymize", content=deep), 400, 15)
    assert_error(await http.post("/patients/nope/modify", content=b""), 400, 15)  # no body: the plan is refused
    assert_error(await http.post("/studies/nope/modify", json={}), 404, 17)


async def test_other_methods_and_paths_stay_the_apps(http: httpx.AsyncClient) -> None:
    wrong_method = await http.get("/studies/x/modify")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert_error(await http.post("/instances/x/y/modify", json={}), 404, 17)  # not a route
