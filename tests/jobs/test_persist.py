"""SaveJobs on virtual time: the 100 ms flush, the 10 s save, the save at stop, and restoring at start."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from node.clock import utc_now
from node.context import NodeContext
from node.errors import ErrorCode
from node.jobs.persist import SAVE_BATCH
from node.jobs.record import JobRecord, JobState
from node.storage.index.sqlite import SqliteIndex
from node.storage.settings import StorageSettings
from tests.support.job_types import JOURNAL, ArchiveLikeJob, StepsJob
from tests.support.jobs import until
from tests.support.node import jobs_of, node_config, start_node


@asynccontextmanager
async def running_node(tmp_path: Path, *, load_jobs: bool = True, **options: Any) -> AsyncIterator[NodeContext]:
    """A node without HTTP nor DICOM on ``tmp_path``, stopped when the block ends."""
    config = node_config(tmp_path, HttpServerEnabled=False, DicomServerEnabled=False, **options)
    async with trio.open_nursery() as nursery:
        yield await start_node(nursery, config, load_jobs=load_jobs)
        nursery.cancel_scope.cancel()


def saves(context: NodeContext) -> float:
    """How many times the node wrote its saved jobs, as its metrics count them."""
    value = context.metrics.registry.get_sample_value("trionode_jobs_saves_total")
    assert value is not None
    return value


async def saved(context: NodeContext) -> dict[str, dict[str, Any]]:
    return {job_id: json.loads(text) for job_id, text in (await context.index.saved_jobs()).items()}


async def saved_after_stop(tmp_path: Path) -> dict[str, dict[str, Any]]:
    index = SqliteIndex(StorageSettings.from_config(node_config(tmp_path)).index_directory)
    try:
        return {job_id: json.loads(text) for job_id, text in (await index.saved_jobs()).items()}
    finally:
        await index.close()


async def test_submissions_are_saved_within_100_ms_in_one_write(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, ConcurrentJobs=1, JobsHistorySize=100) as context:
        engine = jobs_of(context)
        blocker = await engine.submit(StepsJob(1, block_at=0))
        await trio.sleep(1)
        writes = saves(context)
        burst = [await engine.submit(StepsJob(1), priority=i) for i in range(20)]
        await trio.sleep(0.1)
        rows = await saved(context)
        assert {r.id for r in burst} <= rows.keys()
        assert saves(context) == writes + 1
        assert rows[burst[7].id]["Priority"] == 7 and rows[burst[7].id]["State"] == "Pending"

        await engine.cancel(blocker.id)
        ended = trio.current_time()
        await until(lambda: all(r.state is JobState.SUCCESS for r in burst))
        assert trio.current_time() - ended < 0.1  # no-op jobs: all done at once...
        await trio.sleep(0.1)  # ...and saved as ended 100 ms later
        rows = await saved(context)
        assert rows[blocker.id]["State"] == "Failure" and rows[blocker.id]["ErrorCode"] == 37
        assert all(rows[r.id]["State"] == "Success" for r in burst)
        assert saves(context) <= writes + 3


async def test_a_large_burst_is_saved_in_writes_of_a_bounded_size(tmp_path: Path, autojump_clock: Any) -> None:
    count = 2 * SAVE_BATCH + 1
    async with running_node(tmp_path, ConcurrentJobs=1, JobsHistorySize=count + 1) as context:
        engine = jobs_of(context)
        blocker = await engine.submit(StepsJob(1, block_at=0))
        await trio.sleep(1)
        writes = saves(context)
        burst = [await engine.submit(StepsJob(1)) for _ in range(count)]
        await trio.sleep(0.1)
        assert {r.id for r in burst} <= (await saved(context)).keys()
        assert saves(context) == writes + 3
        await engine.cancel(blocker.id)


async def test_progress_is_saved_every_10_seconds(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path) as context:
        started = trio.current_time()
        record = await jobs_of(context).submit(StepsJob(40, delay=0.7))
        await trio.sleep_until(started + 9.9)
        assert (await saved(context))[record.id]["Job"]["Position"] == 0
        await trio.sleep_until(started + 10.1)
        assert (await saved(context))[record.id]["Job"]["Position"] == 14
        await trio.sleep_until(started + 20.1)
        assert (await saved(context))[record.id]["Job"]["Position"] == 28


async def test_final_save_at_stop(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, ConcurrentJobs=1) as context:
        engine = jobs_of(context)
        running = await engine.submit(StepsJob(10, delay=1.0))
        paused = await engine.submit(StepsJob(1))
        await engine.pause(paused.id)
        await trio.sleep(3.5)
    rows = await saved_after_stop(tmp_path)
    assert rows[running.id]["State"] == "Running" and rows[running.id]["Job"]["Position"] == 3
    assert rows[paused.id]["State"] == "Paused"


def public_fields(record: JobRecord) -> dict[str, Any]:
    answer = record.to_json(utc_now())
    del answer["Timestamp"]
    return answer


async def test_restart_restores_every_job_in_its_state(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, ConcurrentJobs=2) as context:
        engine = jobs_of(context)
        success = await engine.submit(StepsJob(2, delay=0.1), user_data={"a": 1})
        failure = await engine.submit(StepsJob(2, fail_at=1))
        await until(lambda: success.state.completed and failure.state.completed)
        canceled = await engine.submit(StepsJob(1, block_at=0))
        await until(lambda: canceled.state is JobState.RUNNING)
        await engine.cancel(canceled.id)
        running = await engine.submit(StepsJob(5, delay=1.0, label="run"), priority=4)
        retry = await engine.submit(StepsJob(2, label="retry", retry_at=0))
        await until(lambda: retry.state is JobState.RETRY)
        blocker = await engine.submit(StepsJob(1, label="blocker", block_at=0))
        pending = await engine.submit(StepsJob(1, label="pending"), priority=-2)
        paused = await engine.submit(StepsJob(1, label="paused"))
        await engine.pause(paused.id)
        archive = await engine.submit(ArchiveLikeJob(1))
        await trio.sleep(2.5)
        before = {r.id: public_fields(r) for r in (success, failure, canceled)}
        assert running.job.content()["Position"] == 2
        assert [r.state for r in (running, retry, blocker, pending, paused)] == [
            JobState.RUNNING, JobState.RETRY, JobState.RUNNING, JobState.PENDING, JobState.PAUSED
        ]  # fmt: skip

    JOURNAL.clear()
    async with running_node(tmp_path, ConcurrentJobs=2) as context:
        engine = jobs_of(context)
        assert engine.get(archive.id) is None  # never saved, like Archive/Media
        assert {r.id for r in engine.records()} == {
            r.id for r in (success, failure, canceled, running, retry, blocker, pending, paused)
        }
        for job_id, fields in before.items():
            restored = engine.get(job_id)
            assert restored is not None and public_fields(restored) == fields
        assert before[failure.id]["ErrorDetails"] == "step 1 failed"
        assert before[canceled.id]["ErrorCode"] == ErrorCode.CANCELED_JOB
        assert before[success.id]["UserData"] == {"a": 1}
        restored_running = engine.get(running.id)
        assert restored_running is not None and restored_running.priority == 4
        assert restored_running.creation_time == running.creation_time
        assert 2.0 <= restored_running.runtime <= 2.51  # its 2 steps, and maybe the interrupted half step
        assert engine.get(paused.id).state is JobState.PAUSED  # type: ignore[union-attr]
        for job_id in (running.id, retry.id, pending.id):
            await engine.get(job_id).completed.wait()  # type: ignore[union-attr]
        # The highest priority first, each from its last completed step; the blocker blocks again.
        assert JOURNAL[0] == "run:2"
        assert [entry for entry in JOURNAL if entry.startswith("run:")][:3] == ["run:2", "run:3", "run:4"]
        assert "retry:0" in JOURNAL and "pending:0" in JOURNAL and "paused:0" not in JOURNAL
        assert engine.get(blocker.id).state is JobState.RUNNING  # type: ignore[union-attr]


async def test_restored_history_keeps_its_size(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, JobsHistorySize=5, ConcurrentJobs=1) as context:
        records = [await jobs_of(context).submit(StepsJob(1, delay=1.0)) for _ in range(5)]
        await records[-1].completed.wait()
    async with running_node(tmp_path, JobsHistorySize=2) as context:
        assert {r.id for r in jobs_of(context).records()} == {r.id for r in records[-2:]}
        await trio.sleep(0.1)
        assert (await saved(context)).keys() == {r.id for r in records[-2:]}


async def test_no_jobs_option_and_save_jobs_false(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, ConcurrentJobs=1) as context:
        await jobs_of(context).submit(StepsJob(1, block_at=0))
    async with running_node(tmp_path, SaveJobs=False) as context:
        assert jobs_of(context).records() == []
        await jobs_of(context).submit(StepsJob(1, block_at=0))
    assert len(await saved_after_stop(tmp_path)) == 1  # SaveJobs false: neither read nor written
    async with running_node(tmp_path, load_jobs=False) as context:
        assert jobs_of(context).records() == []
    async with running_node(tmp_path) as context:
        assert jobs_of(context).records() == []  # --no-jobs started afresh: the old jobs are gone


async def test_unreadable_saved_jobs_are_skipped(tmp_path: Path, autojump_clock: Any) -> None:
    async with running_node(tmp_path, ConcurrentJobs=1) as context:
        good = await jobs_of(context).submit(StepsJob(1, block_at=0))
        await trio.sleep(0.1)
        form = (await saved(context))[good.id]
        unknown_type = {**form, "ID": "unknown-type", "Type": "NoSuchType"}
        broken = {**form, "ID": "broken"}
        del broken["Priority"]
        await context.index.save_jobs(
            {"garbage": "{not json", "unknown-type": json.dumps(unknown_type), "broken": json.dumps(broken)}, ()
        )
    async with running_node(tmp_path) as context:
        assert [r.id for r in jobs_of(context).records()] == [good.id]
