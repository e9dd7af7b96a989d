"""The /jobs REST API and the submission helper, over HTTP, with Orthanc's exact answers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from node.jobs.record import JobState
from tests.support import job_types
from tests.support.jobs import finished, record_of, until
from tests.support.node import client_of, jobs_of, node_config, start_node
from tests.support.rest import assert_error

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIMESTAMP = re.compile(r"^\d{8}T\d{6}(\.\d{6})?$")
ALWAYS = {
    "Content", "CreationTime", "EffectiveRuntime", "ErrorCode", "ErrorDescription", "ErrorDetails",
    "ID", "Priority", "Progress", "State", "Timestamp", "Type",
}  # fmt: skip


@pytest.fixture
async def node(nursery: trio.Nursery, tmp_path: Path) -> NodeContext:
    config = node_config(tmp_path, ConcurrentJobs=1, DicomServerEnabled=False)
    return await start_node(nursery, config, routes=[job_types.blueprint])


async def submit(http: httpx.AsyncClient, **body: Any) -> str:
    answer = await http.post("/test/jobs", json={"Asynchronous": True, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


async def state_of(http: httpx.AsyncClient, job_id: str) -> str:
    return (await http.get(f"/jobs/{job_id}")).json()["State"]


async def running(node: NodeContext, http: httpx.AsyncClient, **body: Any) -> str:
    """A job blocked on I/O in its first step."""
    job_id = await submit(http, BlockAt=0, **body)
    with trio.fail_after(10):
        await until(lambda: record_of(node, job_id).state is JobState.RUNNING)
    return job_id


async def test_asynchronous_submission_and_job_json(node: NodeContext, http: httpx.AsyncClient) -> None:
    answer = await http.post("/test/jobs", json={"Asynchronous": True, "Steps": 2, "Priority": 3, "UserData": "x"})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"ID", "Path"} and UUID4.match(body["ID"]) and body["Path"] == f"/jobs/{body['ID']}"
    await finished(node, body["ID"])

    job = (await http.get(body["Path"])).json()
    assert set(job) == ALWAYS | {"CompletionTime", "UserData"}
    assert job["ID"] == body["ID"] and job["Type"] == "TestSteps" and job["Priority"] == 3
    assert (job["State"], job["Progress"], job["ErrorCode"]) == ("Success", 100, 0)
    assert (job["ErrorDescription"], job["ErrorDetails"], job["UserData"]) == ("Success", "", "x")
    assert job["Content"] == {"Description": "Test", "Label": "", "Position": 2, "Steps": 2}
    assert all(TIMESTAMP.match(job[key]) for key in ("CreationTime", "CompletionTime", "Timestamp"))
    assert isinstance(job["EffectiveRuntime"], float | int)

    assert (await http.get("/jobs")).json() == [body["ID"]]
    expanded = (await http.get("/jobs", params={"expand": ""})).json()
    assert [j["ID"] for j in expanded] == [body["ID"]] and expanded[0]["State"] == "Success"
    unknown = await http.get("/jobs/e0d12aac-47eb-454f-bb7f-9857931e2904")
    assert unknown.status_code == 404 and unknown.content == b""


async def test_running_and_failed_job_json(node: NodeContext, http: httpx.AsyncClient) -> None:
    job_id = await running(node, http)
    job = (await http.get(f"/jobs/{job_id}")).json()
    assert set(job) == ALWAYS and job["State"] == "Running" and job["Progress"] == 0
    await http.post(f"/jobs/{job_id}/cancel")
    failed_id = await submit(http, Steps=3, FailAt=1)
    await finished(node, failed_id)
    job = (await http.get(f"/jobs/{failed_id}")).json()
    assert (job["State"], job["ErrorCode"], job["Progress"]) == ("Failure", 9, 33)
    assert (job["ErrorDescription"], job["ErrorDetails"]) == ("Error in the network protocol", "step 1 failed")


async def test_synchronous_answers(node: NodeContext, http: httpx.AsyncClient) -> None:
    answer = await http.post("/test/jobs", json={"Steps": 2})
    assert answer.status_code == 200
    assert answer.json() == {"Description": "Test", "Label": "", "Position": 2, "Steps": 2}
    assert len((await http.get("/jobs")).json()) == 1  # queued and kept like any other job

    answer = await http.post("/test/jobs", json={"Synchronous": True, "FailAt": 0})
    assert_error(answer, 500, 9, "step 0 failed")
    assert answer.json()["Message"] == "Error in the network protocol"
    assert answer.json()["Uri"] == "/test/jobs" and answer.json()["Method"] == "POST"

    answers: list[httpx.Response] = []
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            answers.append(await http.post("/test/jobs", json={"BlockAt": 0, "Label": "sync"}))

        nursery.start_soon(call)
        jobs = jobs_of(node)
        with trio.fail_after(10):
            await until(lambda: any(r.state is JobState.RUNNING for r in jobs.records()))
        (blocked,) = [r for r in jobs.records() if r.state is JobState.RUNNING]
        assert (await http.post(f"/jobs/{blocked.id}/cancel")).json() == {}
    assert "Details" not in assert_error(answers[0], 500, 37)
    assert answers[0].json()["Message"] == "This job was canceled"


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"Synchronous": "yes"}, "Synchronous", "Boolean"),
        ({"Asynchronous": 1}, "Asynchronous", "Boolean"),
        ({"Priority": "high"}, "Priority", "Integer"),
        ({"Priority": 10.0}, "Priority", "Integer"),
        ({"Priority": True}, "Priority", "Integer"),
        ({"Permissive": "no"}, "Permissive", "Boolean"),
    ],
)
async def test_bad_submission_fields(
    node: NodeContext, http: httpx.AsyncClient, body: dict[str, Any], field: str, kind: str
) -> None:
    assert_error(await http.post("/test/jobs", json=body), 400, 15, f"{kind} value expected in field: {field}")
    assert (await http.get("/jobs")).json() == []


async def test_submission_mode_resolution(node: NodeContext, http: httpx.AsyncClient) -> None:
    both = (await http.post("/test/jobs", json={"Synchronous": False, "Asynchronous": False})).json()
    assert set(both) == {"ID", "Path"}  # Synchronous decides
    sync = (await http.post("/test/jobs", json={"Asynchronous": False})).json()
    assert "Steps" in sync
    not_an_object = (await http.post("/test/jobs", json=[1, 2])).json()
    assert "Steps" in not_an_object  # route default
    job_id = (await http.post("/test/jobs", json={"Asynchronous": True, "Priority": -10})).json()["ID"]
    assert (await http.get(f"/jobs/{job_id}")).json()["Priority"] == -10


async def test_permissive_submission(node: NodeContext, http: httpx.AsyncClient) -> None:
    body = {"Type": "TestInstances", "Instances": ["a", "bad", "b"]}
    assert_error(await http.post("/test/jobs", json=body), 500, 9, "cannot send bad")
    answer = await http.post("/test/jobs", json={**body, "Permissive": True})
    assert answer.json() == {"Description": "REST API", "FailedInstancesCount": 1, "InstancesCount": 3}


async def test_a_bug_in_a_job_keeps_its_details_in_the_log(node: NodeContext, http: httpx.AsyncClient) -> None:
    job_id = await submit(http, Type="TestInstances", Instances=["a", "bug"])
    await finished(node, job_id)
    job = (await http.get(f"/jobs/{job_id}")).json()
    assert (job["State"], job["ErrorCode"], job["ErrorDescription"]) == ("Failure", -1, "Internal error")
    assert "secret" not in str(job) and "RuntimeError" not in str(job)


async def action(http: httpx.AsyncClient, job_id: str, name: str) -> httpx.Response:
    return await http.post(f"/jobs/{job_id}/{name}", content=b"ignored")


def assert_ok(answer: httpx.Response) -> None:
    assert answer.status_code == 200 and answer.json() == {}
    assert answer.headers["content-type"].startswith("application/json")


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 400 and answer.content == b""


async def test_actions_on_a_running_job(node: NodeContext, http: httpx.AsyncClient) -> None:
    job_id = await running(node, http, Steps=2)
    assert_refused(await action(http, job_id, "resume"))
    assert_refused(await action(http, job_id, "resubmit"))
    assert_ok(await action(http, job_id, "pause"))
    assert await state_of(http, job_id) == "Paused"  # at once, though the step was blocked on I/O
    assert_ok(await action(http, job_id, "pause"))
    assert_refused(await action(http, job_id, "resubmit"))
    assert_ok(await action(http, job_id, "resume"))
    with trio.fail_after(10):
        while await state_of(http, job_id) != "Running":
            await trio.sleep(0.01)
    assert_ok(await action(http, job_id, "cancel"))
    job = (await http.get(f"/jobs/{job_id}")).json()
    assert (job["State"], job["ErrorCode"], job["ErrorDescription"]) == ("Failure", 37, "This job was canceled")
    assert_ok(await action(http, job_id, "cancel"))
    assert_ok(await action(http, job_id, "pause"))
    assert_refused(await action(http, job_id, "resume"))
    assert_ok(await action(http, job_id, "resubmit"))
    assert await state_of(http, job_id) in ("Pending", "Running")
    assert_ok(await action(http, job_id, "cancel"))


async def test_actions_on_pending_and_ended_jobs(node: NodeContext, http: httpx.AsyncClient) -> None:
    blocker = await running(node, http)
    pending = await submit(http)
    assert_refused(await action(http, pending, "resume"))
    assert_refused(await action(http, pending, "resubmit"))
    assert_ok(await action(http, pending, "pause"))
    assert await state_of(http, pending) == "Paused"
    assert_ok(await action(http, pending, "cancel"))
    assert await state_of(http, pending) == "Failure"
    assert_ok(await action(http, blocker, "cancel"))

    done = await submit(http)
    await finished(node, done)
    for name in ("pause", "cancel"):
        assert_ok(await action(http, done, name))
    for name in ("resume", "resubmit"):
        assert_refused(await action(http, done, name))
    assert await state_of(http, done) == "Success"
    for name in ("pause", "cancel", "resume", "resubmit"):
        assert_refused(await action(http, "e0d12aac-47eb-454f-bb7f-9857931e2904", name))


async def test_archive_jobs_refuse_resubmission(node: NodeContext, http: httpx.AsyncClient) -> None:
    job_id = await submit(http, Type="TestArchive", FailAt=0)
    await finished(node, job_id)
    answer = await action(http, job_id, "resubmit")
    assert_error(answer, 500, 6, "Cannot resubmit the creation of an archive")
    assert await state_of(http, job_id) == "Failure"


async def test_outputs(node: NodeContext, http: httpx.AsyncClient) -> None:
    first = await submit(http, Type="TestArchive", Output="PK-first")
    await finished(node, first)
    answer = await http.get(f"/jobs/{first}/archive")
    assert answer.status_code == 200 and answer.content == b"PK-first"
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == 'filename="archive.zip"'
    assert_error(await http.get(f"/jobs/{first}/other"), 404, 7, "Job has no such output: other")

    second = await submit(http, Type="TestArchive", Output="PK-second")
    await finished(node, second)
    # MediaArchiveSize 1: the new output evicts the previous one; the job stays.
    assert_error(await http.get(f"/jobs/{first}/archive"), 404, 7, "Job has no such output: archive")
    assert await state_of(http, first) == "Success"

    blocker = await running(node, http, Type="TestArchive", Output="PK")
    assert_error(await http.get(f"/jobs/{blocker}/archive"), 404, 7, "Job has no such output: archive")
    assert_error(await http.get("/jobs/unknown/archive"), 404, 7, "Job has no such output: archive")

    deleted = await http.delete(f"/jobs/{second}/archive")
    assert deleted.status_code == 200 and deleted.content == b""
    assert_error(await http.delete(f"/jobs/{second}/archive"), 404, 7, "Job has no such output: archive")
    assert_error(await http.get(f"/jobs/{second}/archive"), 404, 7, "Job has no such output: archive")
    refused = await http.post(f"/jobs/{second}/archive")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET,DELETE"
    assert_error(await http.get(f"/jobs/{second}/pause"), 404, 7, "Job has no such output: pause")


async def test_delete_job(node: NodeContext, http: httpx.AsyncClient) -> None:
    done = await submit(http)
    await finished(node, done)
    blocker = await running(node, http)
    answer = await http.delete(f"/jobs/{done}")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-type"].startswith("text/plain")
    assert (await http.get(f"/jobs/{done}")).status_code == 404
    assert_error(await http.delete(f"/jobs/{done}"), 404, 7, f"No job found with this id: {done}")
    assert_error(await http.delete(f"/jobs/{blocker}"), 404, 7, f"No job found with this id: {blocker}")


async def test_history_size_zero_over_rest(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, JobsHistorySize=0, DicomServerEnabled=False)
    context = await start_node(nursery, config, routes=[job_types.blueprint])
    async with client_of(context) as http:
        answer = await http.post("/test/jobs", json={})
        assert_error(answer, 404, 7, 'Cannot retrieve the status of the job, make sure that "JobsHistorySize" is not 0')
        job_id = await submit(http, Steps=3)
        with trio.fail_after(10):
            while (await http.get("/jobs")).json():  # forgotten as soon as it ends
                await trio.sleep(0.01)
        assert (await http.get(f"/jobs/{job_id}")).status_code == 404
