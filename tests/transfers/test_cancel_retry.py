"""Transfers that free the network at once when paused or cancelled, even when the remote never
answers; that resume at the next instance not sent; and that retry on their own after a
transient failure (JobsRetry), never after a permanent one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio
import trio.testing

from node.context import NodeContext
from node.errors import ErrorCode
from node.jobs.record import JobState
from tests.support.datasets import make_dicom
from tests.support.dicom_remotes import Behaviour, ScriptedRemote, start_remote
from tests.support.http_remotes import start_http_remote
from tests.support.jobs import finished, record_of, until
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error, upload
from tests.support.tasks import task_names, tasks_added

NETWORK_FREED = 0.1  # seconds from the user's pause or cancel to the A-ABORT and the closed connection
BACKOFF = 60.0  # seconds between attempts, skipped by jumping the mock clock
WAIT = 10.0  # seconds any other wait may take


async def _instances(http: httpx.AsyncClient, count: int) -> list[str]:
    return [(await upload(http, make_dicom(patient_id="CANCEL", instance_number=n)))["ID"] for n in range(count)]


async def _submit(http: httpx.AsyncClient, path: str, instances: list[str]) -> str:
    answer = await http.post(path, json={"Resources": instances, "Asynchronous": True})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


async def test_cancel_aborts_a_stalled_association_within_100_ms(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_remote(nursery, Behaviour.STORE, answered=0)  # associates, then never answers
    await node.remotes.modalities.put("stuck", ["STUCK", "127.0.0.1", remote.port])
    instances = await _instances(http, 2)
    before = task_names()
    job = await _submit(http, "/modalities/stuck/store", instances)
    with trio.fail_after(WAIT):
        await remote.connected.wait()
        await remote.connections[0].stalled.wait()
    asked = trio.current_time()
    assert (await http.post(f"/jobs/{job}/cancel")).status_code == 200
    with trio.fail_after(NETWORK_FREED):
        await remote.connections[0].aborted.wait()
        await remote.connections[0].closed.wait()
    assert trio.current_time() - asked < NETWORK_FREED
    record = await finished(node, job)
    assert (record.state, record.error_code) == (JobState.FAILURE, ErrorCode.CANCELED_JOB)
    await record.stop_hooks.wait_value(0)
    assert tasks_added(before) == {}


async def test_pause_aborts_and_resume_sends_the_rest(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_remote(nursery, Behaviour.STORE, answered=1)  # one instance, then silence
    await node.remotes.modalities.put("slow", ["SLOW", "127.0.0.1", remote.port])
    instances = await _instances(http, 3)
    job = await _submit(http, "/modalities/slow/store", instances)
    with trio.fail_after(WAIT):
        await remote.connected.wait()
        await remote.connections[0].stalled.wait()
    asked = trio.current_time()
    assert (await http.post(f"/jobs/{job}/pause")).status_code == 200
    with trio.fail_after(NETWORK_FREED):
        await remote.connections[0].aborted.wait()
        await remote.connections[0].closed.wait()
    assert trio.current_time() - asked < NETWORK_FREED
    assert record_of(node, job).state is JobState.PAUSED
    assert (await http.get(f"/jobs/{job}")).json()["Progress"] == 33
    remote.answered = None
    assert (await http.post(f"/jobs/{job}/resume")).status_code == 200
    assert (await finished(node, job)).state is JobState.SUCCESS
    assert [len(connection.stored) for connection in remote.connections] == [1, 2]  # nothing sent twice
    assert len(set(remote.stored)) == 3


async def test_cancel_closes_a_stalled_http_request_within_100_ms(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    silent = await start_http_remote(nursery, None)
    await node.remotes.peers.put("silent", [silent.url])
    job = await _submit(http, "/peers/silent/store", await _instances(http, 1))
    with trio.fail_after(WAIT):
        await silent.stalled.wait()
    asked = trio.current_time()
    assert (await http.post(f"/jobs/{job}/cancel")).status_code == 200
    with trio.fail_after(NETWORK_FREED):
        await silent.closed.wait()
    assert trio.current_time() - asked < NETWORK_FREED
    assert (await finished(node, job)).error_code is ErrorCode.CANCELED_JOB


async def _retrying_node(nursery: trio.Nursery, tmp_path: Path, attempts: int, **options: Any) -> NodeContext:
    retry = {"Attempts": attempts, "BackoffSeconds": BACKOFF}
    return await start_node(nursery, node_config(tmp_path, JobsRetry=retry, **options))


async def _until_retry(node: NodeContext, job: str) -> None:
    """Until the job waits out its backoff: in the Retry state, its timer armed (a jump of the clock
    before then would move the timer's deadline with it)."""
    with trio.fail_after(WAIT):
        await until(lambda: record_of(node, job).state is JobState.RETRY)
        await trio.testing.wait_all_tasks_blocked()


async def _modality(node: NodeContext, remote: ScriptedRemote) -> None:
    await node.remotes.modalities.put("flaky", ["FLAKY", "127.0.0.1", remote.port])


async def test_a_flaky_remote_is_retried_after_the_backoff(
    mock_clock: trio.testing.MockClock, nursery: trio.Nursery, tmp_path: Path
) -> None:
    mock_clock.rate = 1.0  # real time, but the backoff is skipped with a jump
    node = await _retrying_node(nursery, tmp_path, 2)
    remote = await start_remote(nursery, Behaviour.REJECT_FOR_NOW)
    await _modality(node, remote)
    async with client_of(node) as http:
        instances = await _instances(http, 2)
        job = await _submit(http, "/modalities/flaky/store", instances)
        await _until_retry(node, job)
        shown = (await http.get(f"/jobs/{job}")).json()
        assert (shown["State"], shown["Attempts"], shown["Progress"]) == ("Retry", 1, 0)
        remote.behaviour = Behaviour.STORE
        mock_clock.jump(BACKOFF)
        assert (await finished(node, job)).state is JobState.SUCCESS
        shown = (await http.get(f"/jobs/{job}")).json()
        assert (shown["State"], shown["Attempts"], shown["Content"]["FailedInstancesCount"]) == ("Success", 1, 0)
    assert len(remote.connections) == 2 and len(remote.stored) == 2


async def test_retries_end_with_the_transient_failure(
    mock_clock: trio.testing.MockClock, nursery: trio.Nursery, tmp_path: Path
) -> None:
    mock_clock.rate = 1.0
    node = await _retrying_node(nursery, tmp_path, 1)
    remote = await start_remote(nursery, Behaviour.REJECT_FOR_NOW)
    await _modality(node, remote)
    async with client_of(node) as http:
        job = await _submit(http, "/modalities/flaky/store", await _instances(http, 1))
        await _until_retry(node, job)
        mock_clock.jump(BACKOFF)
        record = await finished(node, job)
        shown = (await http.get(f"/jobs/{job}")).json()
    assert (record.state, shown["ErrorCode"], shown["Attempts"]) == (JobState.FAILURE, 9, 1)
    assert shown["ErrorDetails"].startswith(
        'DicomAssociation - connecting to AET "FLAKY": DUL Association Rejected (result 2'
    )
    assert len(remote.connections) == 2


async def test_permanent_failures_are_not_retried(nursery: trio.Nursery, tmp_path: Path) -> None:
    node = await _retrying_node(nursery, tmp_path / "a", 3)
    strict = await start_node(nursery, node_config(tmp_path / "strict", DicomCheckCalledAet=True))
    await node.remotes.modalities.put("unknown", ["UNKNOWN", "127.0.0.1", strict.ports["dicom"]])
    failing = await start_http_remote(nursery, 403)
    await node.remotes.peers.put("forbidden", [failing.url])
    async with client_of(node) as http:
        instance = (await upload(http, make_dicom()))["ID"]
        body = assert_error(await http.post("/modalities/unknown/store", content=instance), 500, 9)
        assert "DUL Association Rejected (result 1" in body["Details"]
        assert (
            "HTTP 403" in assert_error(await http.post("/peers/forbidden/store", content=instance), 500, 9)["Details"]
        )
        for job in (await http.get("/jobs")).json():
            assert "Attempts" not in (await http.get(f"/jobs/{job}")).json()
    assert len(failing.requests) == 1


async def test_a_silent_remote_times_out_as_orthanc_says(
    mock_clock: trio.testing.MockClock, nursery: trio.Nursery, tmp_path: Path
) -> None:
    mock_clock.rate = 1.0
    node = await start_node(nursery, node_config(tmp_path))
    remote = await start_remote(nursery, Behaviour.SILENT)
    await node.remotes.modalities.put(
        "silent", {"AET": "SILENT", "Host": "127.0.0.1", "Port": remote.port, "Timeout": 5}
    )
    answers: list[httpx.Response] = []
    async with client_of(node) as http:
        instance = (await upload(http, make_dicom()))["ID"]

        async def store() -> None:
            answers.append(await http.post("/modalities/silent/store", content=instance))

        nursery.start_soon(store)
        with trio.fail_after(WAIT):
            await remote.connected.wait()
            await trio.testing.wait_all_tasks_blocked()  # the association request sent, its timer armed
        mock_clock.jump(5)
        with trio.fail_after(WAIT):
            await until(lambda: bool(answers))
    body = assert_error(answers[0], 500, 9)
    assert body["Details"].startswith('DicomAssociation - connecting to AET "SILENT": DUL network read timeout')
