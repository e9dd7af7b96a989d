"""Pause, resume and cancel in the middle of a 200-instance study modification, and Permissive."""

from __future__ import annotations

import httpx
import trio

from node.context import NodeContext
from node.jobs.record import JobState
from tests.support.datasets import make_dataset, to_bytes
from tests.support.jobs import finished, gate_at, pause_at, record_of
from tests.support.rest import file_of, get_json, post
from tests.support.studies import upload_study

MODIFY = {"Replace": {"StudyDescription": "MIDWAY"}, "Asynchronous": True}


async def test_pause_then_resume_continues_with_the_next_instance(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http, series=4, per_series=50)
    async with gate_at(node, after=80) as gate:
        job_id = (await post(http, f"/studies/{source.study}/modify", MODIFY)).json()["ID"]
        await pause_at(node, http, job_id, gate)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["Progress"]) == ("Paused", round(80 / 201 * 100))
    new_study = job["Content"]["ID"]
    assert len(await get_json(http, f"/studies/{new_study}/instances")) == 80

    assert (await http.post(f"/jobs/{job_id}/resume", content="")).status_code == 200
    await finished(node, job_id)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["Progress"], job["Content"]["ID"]) == ("Success", 100, new_study)
    assert (job["Content"]["InstancesCount"], job["Content"]["FailedInstancesCount"]) == (200, 0)
    modified = await get_json(http, f"/studies/{new_study}/instances")
    assert len(modified) == 200  # nothing stored twice, nothing skipped
    assert len(await get_json(http, f"/studies/{new_study}/series")) == 4
    assert len(await get_json(http, f"/studies/{source.study}/instances")) == 200  # KeepSource defaults to true


async def test_cancel_midway_fails_with_code_37_and_keeps_the_sources(
    http: httpx.AsyncClient, node: NodeContext
) -> None:
    source = await upload_study(http, series=2, per_series=100)
    async with gate_at(node, after=120) as gate:
        job_id = (await post(http, f"/studies/{source.study}/modify", {**MODIFY, "KeepSource": False})).json()["ID"]
        with trio.fail_after(30):
            await gate.reached.wait()
        assert (await http.post(f"/jobs/{job_id}/cancel", content="")).status_code == 200
        gate.release.set()
        await finished(node, job_id)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["ErrorCode"], job["ErrorDescription"]) == ("Failure", 37, "This job was canceled")
    # The sources are deleted only by the final step, which a cancelled job never reaches.
    assert len(await get_json(http, f"/studies/{source.study}/instances")) == 200

    assert (await http.post(f"/jobs/{job_id}/resubmit", content="")).status_code == 200
    await finished(node, job_id)
    job = await get_json(http, f"/jobs/{job_id}")
    assert job["State"] == "Success"
    assert (await http.get(f"/studies/{source.study}")).status_code == 404
    assert len(await get_json(http, f"/studies/{job['Content']['ID']}/instances")) == 200


async def test_sync_call_waits_through_pause_and_resume(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http, series=1, per_series=10)
    answers: list[httpx.Response] = []
    async with trio.open_nursery() as nursery, gate_at(node, after=4) as gate:

        async def call() -> None:
            answers.append(await post(http, f"/studies/{source.study}/modify", {"Replace": {"StudyID": "9"}}))

        nursery.start_soon(call)
        with trio.fail_after(30):
            await gate.reached.wait()
        job_id = next(r.id for r in node.jobs.records() if r.state is JobState.RUNNING)  # type: ignore[union-attr]
        await pause_at(node, http, job_id, gate)
        assert not answers  # the synchronous caller is still waiting
        assert (await http.post(f"/jobs/{job_id}/resume", content="")).status_code == 200
    assert answers[0].status_code == 200
    assert answers[0].json()["InstancesCount"] == 10
    assert record_of(node, job_id).state is JobState.SUCCESS


async def test_permissive_counts_an_instance_that_cannot_be_modified(http: httpx.AsyncClient) -> None:
    source = await upload_study(http, series=1, per_series=3)
    odd = make_dataset(patient_id="PAT", study_uid=(await file_of(http, source.instances[0])).StudyInstanceUID)
    odd.add_new(0x00102160, "US", 7)  # EthnicGroup with a binary VR: cannot take a text value
    await http.post("/instances", content=to_bytes(odd))
    body = {"Replace": {"EthnicGroup": "abc"}}
    failed = await post(http, f"/studies/{source.study}/modify", body)
    assert failed.status_code == 400 and failed.json()["OrthancStatus"] == 15

    content = (await post(http, f"/studies/{source.study}/modify", {**body, "Permissive": True})).json()
    assert (content["InstancesCount"], content["FailedInstancesCount"]) == (4, 1)
    assert len(await get_json(http, f"/studies/{content['ID']}/instances")) == 3
