"""What goes wrong in a cluster's index stops a job or fails a row, never a member: a write the
index refuses, a row whose form cannot be read, a job another member could not rebuild, a pinned
job whose lease was taken. Real members on a real index (each backend where both can show it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

from node.jobs.cluster import LOST_MEMBER, UNREADABLE
from node.jobs.record import JobRecord, JobState
from tests.support.cluster import BLOCKED, in_state, journal_has, row_when, start_member
from tests.support.job_types import JOURNAL, ArchiveLikeJob, StepsJob
from tests.support.jobs import record_of, until
from tests.support.node import client_of, jobs_of
from tests.support.postgres import Cluster

TTL_MS = 60_000
SHORT_LEASE = 3  # renewed every second: a lost lease or a row to give back is seen within one
# On the first write of a job's progress (its Position 1), once: the sequence is not rolled back with the
# refused transaction, so the trigger refuses exactly one write.
REFUSE_ONE_WRITE = """
CREATE SEQUENCE refusals;
CREATE FUNCTION refuse_once() RETURNS trigger AS $$
BEGIN
    IF NEW.data LIKE '%"Position": 1%' THEN
        IF nextval('refusals') = 1 THEN
            RAISE EXCEPTION 'refused by the test';
        END IF;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER refuse BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_once();
"""


async def test_a_write_the_index_refuses_stops_the_job_and_another_claim_resumes_it(
    tmp_path: Path, postgres_cluster: Cluster, postgres_database: dict[str, Any]
) -> None:
    options = {"JobsLeaseTimeout": SHORT_LEASE, "ConcurrentJobs": 1}
    async with trio.open_nursery() as nursery:
        member = await start_member(nursery, tmp_path, "a", PostgreSQL=postgres_database, **options)
        with postgres_cluster.connect(postgres_database["Database"]) as admin:
            admin.execute(REFUSE_ONE_WRITE)
        async with client_of(member) as http:
            job_id = (await http.post("/test/jobs", json={"Asynchronous": True, "Steps": 3, "Label": "f"})).json()["ID"]
            row = await row_when(member, job_id, in_state("Success", "Failure"))
            # Stopped here without writing, given back, claimed again: from its last written step.
            assert (row.state, row.generation) == ("Success", 2)
            assert JOURNAL == ["f:0", "f:stop:Paused", "f:0", "f:1", "f:2", "f:stop:Success"]
            assert (await http.get("/system")).status_code == 200  # the member lives on
        nursery.cancel_scope.cancel()


async def test_an_unreadable_row_fails_alone(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    async with trio.open_nursery() as nursery:
        member = await start_member(nursery, tmp_path, "a", **shared_index)
        for job_id, data in (("not-an-object", "[1]"), ("not-json", "{"), ("no-type", '{"Job": {}}')):
            await member.index.insert_job(job_id, data, state="Pending", priority=9, owner=None, ttl_ms=TTL_MS)
        async with client_of(member) as http:
            done = await http.post("/test/jobs", json={"Steps": 1, "Label": "fine"})  # waits for its end
            assert done.status_code == 200 and done.json()["Position"] == 1
            for job_id in ("not-an-object", "not-json", "no-type"):
                row = await row_when(member, job_id, in_state("Failure"))
                assert row.owner is None
                shown = await http.get(f"/jobs/{job_id}")
                assert shown.status_code == 200
                assert shown.json()["State"] == "Failure" and shown.json()["ErrorDetails"].startswith(UNREADABLE)
            listed = await http.get("/jobs", params={"expand": ""})
            assert listed.status_code == 200 and len(listed.json()) == 4
        nursery.cancel_scope.cancel()


async def test_waiting_for_a_job_no_member_could_rebuild_answers_its_failure(
    tmp_path: Path, shared_index: dict[str, Any]
) -> None:
    """The row of a pinned job whose member is gone (its form has no saved job): the member that
    claims it writes why it failed, and one waiting for the job learns that, not an error of its own."""
    async with trio.open_nursery() as nursery:
        member = await start_member(nursery, tmp_path, "a", **shared_index)
        orphan = JobRecord(job=ArchiveLikeJob(1), priority=0)
        await member.index.insert_job(
            orphan.id, json.dumps(orphan.shared_form()), state="Pending", priority=0, owner=None, ttl_ms=TTL_MS
        )
        waiter = JobRecord(job=StepsJob(1), priority=0, id=orphan.id)  # as a member that handed it out sees it
        with trio.fail_after(30):
            ended = await jobs_of(member).wait_completed(waiter)
        assert ended is not None and ended.state is JobState.FAILURE and ended.error_details == LOST_MEMBER
        nursery.cancel_scope.cancel()


async def test_a_pinned_job_whose_lease_was_taken_stops_once(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    async with trio.open_nursery() as nursery:
        options = {"JobsLeaseTimeout": SHORT_LEASE, "ConcurrentJobs": 1}  # its one worker busy: it claims nothing
        member = await start_member(nursery, tmp_path, "a", **options, **shared_index)
        async with client_of(member) as http:
            job_id = (await http.post("/test/jobs", json=BLOCKED)).json()["ID"]
            held = await row_when(member, job_id, in_state("Running"))
            record = record_of(member, job_id)
            # Another member takes the row (as after a partition): the next renewal finds it gone.
            assert await member.index.release_owned_job(job_id, held.owner or "", held.generation)
            assert await member.index.claim_job("thief", TTL_MS) is not None
            await journal_has("blocked:stop:Failure")
            await until(lambda: record.stop_hooks.value == 0)
            assert JOURNAL == ["blocked:0", "blocked:stop:Failure"]
            assert record.error_details == LOST_MEMBER
        nursery.cancel_scope.cancel()
