"""Two members of one cluster in this process: any job is seen and acted on from either member,
on each index backend (shared_index).

A "TestArchive" job cannot be saved, so it is pinned to the member that took it: that is how a
test knows where a job runs. Its step 0 blocks (BlockAt) until the job is paused or cancelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from node.jobs.engine import SETTLE_TIMEOUT
from tests.support.cluster import held_by, in_state, row_when, start_member
from tests.support.job_types import JOURNAL
from tests.support.node import client_of
from tests.support.studies import upload_study

BLOCKED_ON_A = {"Type": "TestArchive", "Asynchronous": True, "Steps": 2, "BlockAt": 0, "Label": "blocked"}
# An action's answer comes once the owner acted, or after SETTLE_TIMEOUT: the HTTP round trips on top stay small.
ACTION_BOUND = SETTLE_TIMEOUT + 0.4


async def _action(http: httpx.AsyncClient, job_id: str, action: str) -> float:
    """POST the action; how long its answer took."""
    start = trio.current_time()
    answer = await http.post(f"/jobs/{job_id}/{action}", json={})
    assert answer.status_code == 200, answer.text
    return trio.current_time() - start


async def test_a_job_of_one_member_is_read_and_driven_from_the_other(
    tmp_path: Path, shared_index: dict[str, Any]
) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_member(nursery, tmp_path, "a", **shared_index)
        b = await start_member(nursery, tmp_path, "b", **shared_index)
        async with client_of(a) as http_a, client_of(b) as http_b:
            job_id = (await http_a.post("/test/jobs", json=BLOCKED_ON_A)).json()["ID"]
            await row_when(b, job_id, held_by(a))
            seen = (await http_b.get(f"/jobs/{job_id}")).json()
            assert (seen["ID"], seen["Type"], seen["State"]) == (job_id, "TestArchive", "Running")
            assert job_id in (await http_b.get("/jobs")).json()
            assert [job["ID"] for job in (await http_b.get("/jobs", params={"expand": ""})).json()] == [job_id]

            # Paused from B: A's step is cancelled and the row says so by the time B answers.
            assert await _action(http_b, job_id, "pause") < ACTION_BOUND
            assert (await http_b.get(f"/jobs/{job_id}")).json()["State"] == "Paused"
            assert JOURNAL[-1] == "blocked:stop:Paused"

            # Resumed from B: pinned to A, it runs there again.
            assert await _action(http_b, job_id, "resume") < ACTION_BOUND
            await row_when(b, job_id, held_by(a))

            # Cancelled from B.
            assert await _action(http_b, job_id, "cancel") < ACTION_BOUND
            ended = (await http_b.get(f"/jobs/{job_id}")).json()
            assert (ended["State"], ended["ErrorCode"]) == ("Failure", 37)
            assert (await http_a.get(f"/jobs/{job_id}")).json()["State"] == "Failure"
            assert JOURNAL.count("blocked:0") == 2 and JOURNAL[-1] == "blocked:stop:Canceled"
        nursery.cancel_scope.cancel()


async def test_resubmitted_from_the_other_member(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_member(nursery, tmp_path, "a", **shared_index)
        b = await start_member(nursery, tmp_path, "b", **shared_index)
        async with client_of(a) as http_a, client_of(b) as http_b:
            body = {"Asynchronous": True, "Steps": 2, "FailAt": 1, "Label": "failing"}
            job_id = (await http_a.post("/test/jobs", json=body)).json()["ID"]
            await row_when(b, job_id, in_state("Failure"))
            assert (await http_b.post(f"/jobs/{job_id}/resubmit", json={})).json() == {}
            row = await row_when(a, job_id, in_state("Failure"))
            assert row.generation == 2  # claimed twice: once per run
            assert JOURNAL.count("failing:0") == 2 and JOURNAL.count("failing:1") == 2
            # A synchronous submission on A answers once the job ended, wherever it ran.
            done = await http_a.post("/test/jobs", json={"Steps": 3, "Label": "sync"})
            assert done.json()["Position"] == 3
        nursery.cancel_scope.cancel()


async def test_archive_made_by_one_member_is_served_by_the_other(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_member(nursery, tmp_path, "a", **shared_index)
        b = await start_member(nursery, tmp_path, "b", **shared_index)
        async with client_of(a) as http_a, client_of(b) as http_b:
            study = await upload_study(http_a, series=1, per_series=2)
            job_id = (await http_a.post(f"/studies/{study.study}/archive", json={"Asynchronous": True})).json()["ID"]
            row = await row_when(b, job_id, in_state("Success", "Failure"))
            assert row.state == "Success"
            served = await http_b.get(f"/jobs/{job_id}/archive")
            assert served.status_code == 200
            assert served.headers["content-type"] == "application/zip"
            assert served.content[:2] == b"PK"
            assert str(len(served.content)) == (await http_b.get(f"/jobs/{job_id}")).json()["Content"]["ArchiveSize"]
            assert (await http_b.delete(f"/jobs/{job_id}/archive")).status_code == 200
            assert (await http_a.get(f"/jobs/{job_id}/archive")).status_code == 404
        nursery.cancel_scope.cancel()


async def test_the_higher_priority_is_claimed_first(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    async with trio.open_nursery() as nursery:
        a = await start_member(nursery, tmp_path, "a", ConcurrentJobs=1, **shared_index)
        b = await start_member(nursery, tmp_path, "b", ConcurrentJobs=1, **shared_index)
        async with client_of(a) as http_a, client_of(b) as http_b:
            # Both workers busy: one blocked job pinned to each member.
            blocker_a = (await http_a.post("/test/jobs", json=BLOCKED_ON_A)).json()["ID"]
            blocker_b = (await http_b.post("/test/jobs", json=BLOCKED_ON_A)).json()["ID"]
            await row_when(a, blocker_a, held_by(a))
            await row_when(b, blocker_b, held_by(b))
            low = {"Asynchronous": True, "Label": "low", "Priority": 0}
            high = {"Asynchronous": True, "Label": "high", "Priority": 10}
            low_id = (await http_a.post("/test/jobs", json=low)).json()["ID"]
            high_id = (await http_b.post("/test/jobs", json=high)).json()["ID"]
            assert (await http_a.get("/ui/api/queue")).json() == [high_id, low_id]
            await _action(http_b, blocker_a, "cancel")  # A's worker is free: it takes the high one first
            await row_when(a, low_id, in_state("Success"))
            assert JOURNAL.index("high:0") < JOURNAL.index("low:0")
            assert (await http_b.get("/tools/metrics-prometheus")).status_code == 200
            await _action(http_a, blocker_b, "cancel")
        nursery.cancel_scope.cancel()
