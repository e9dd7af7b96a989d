"""The jobs engine on virtual time: scheduling, pause/resume/cancel, retry, history and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from node.errors import ErrorCode, OrthancError
from node.jobs.engine import JobsEngine
from node.jobs.record import JobRecord, JobState
from node.jobs.submit import submit, submit_options
from tests.support.job_types import JOURNAL, ArchiveLikeJob, InstancesJob, StepsJob
from tests.support.jobs import until
from tests.support.node import jobs_of, node_config, start_node


async def start_engine(nursery: trio.Nursery, tmp_path: Path, **options: Any) -> JobsEngine:
    """A node without HTTP nor DICOM: these tests talk to its engine directly."""
    config = {"HttpServerEnabled": False, "DicomServerEnabled": False, "SaveJobs": False, "ConcurrentJobs": 1}
    return jobs_of(await start_node(nursery, node_config(tmp_path, **{**config, **options})))


async def running_blocker(engine: JobsEngine) -> JobRecord:
    """Occupies the single worker, blocked on I/O, until cancelled."""
    blocker = await engine.submit(StepsJob(1, label="blocker", block_at=0))
    await until(lambda: blocker.state is JobState.RUNNING)
    return blocker


def started() -> list[str]:
    return [entry.removesuffix(":0") for entry in JOURNAL if entry.endswith(":0")]


async def test_higher_priority_runs_next(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    blocker = await running_blocker(engine)
    jobs = [
        await engine.submit(StepsJob(1, label=label), priority=priority)
        for label, priority in (("low1", 0), ("low2", 0), ("high", 10))
    ]
    assert all(job.state is JobState.PENDING for job in jobs)
    await engine.cancel(blocker.id)
    for job in jobs:
        await job.completed.wait()
    assert started() == ["blocker", "high", "low1", "low2"]


async def test_negative_priorities(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    blocker = await running_blocker(engine)
    jobs = [
        await engine.submit(StepsJob(1, label=label), priority=priority)
        for label, priority in (("neg5a", -5), ("zero", 0), ("neg1", -1), ("neg5b", -5), ("pos", 3))
    ]
    await engine.cancel(blocker.id)
    for job in jobs:
        await job.completed.wait()
    assert started() == ["blocker", "pos", "zero", "neg1", "neg5a", "neg5b"]


async def test_workers_run_concurrently(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path, ConcurrentJobs=3)
    jobs = [await engine.submit(StepsJob(1, delay=1.0, label=str(i))) for i in range(6)]
    start = trio.current_time()
    for job in jobs:
        await job.completed.wait()
    assert trio.current_time() - start == pytest.approx(2.0)  # 3 at a time, 1 s each


async def test_pause_and_resume_from_the_right_step(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(StepsJob(5, delay=1.0, label="j"))
    await trio.sleep(2.5)  # steps 0 and 1 done, step 2 half-way
    asked = trio.current_time()
    assert await engine.pause(record.id)
    assert record.state is JobState.PAUSED
    assert trio.current_time() - asked < 0.1
    assert record.job.content()["Position"] == 2
    assert record.to_json(record.last_change)["Progress"] == 40

    await trio.sleep(30)
    assert record.state is JobState.PAUSED
    assert engine.resume(record.id)
    await record.completed.wait()
    assert record.state is JobState.SUCCESS
    await record.stop_hooks.wait_value(0)
    assert JOURNAL == ["j:0", "j:1", "j:2", "j:stop:Paused", "j:2", "j:3", "j:4", "j:stop:Success"]
    assert record.runtime == pytest.approx(5.5)  # 2.5 s before the pause, 3 s after


async def test_pause_of_pending_job_and_no_op_pauses(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any
) -> None:
    engine = await start_engine(nursery, tmp_path)
    blocker = await running_blocker(engine)
    waiting = await engine.submit(StepsJob(1, label="w"))
    assert await engine.pause(waiting.id)
    assert waiting.state is JobState.PAUSED
    assert await engine.pause(waiting.id)  # paused again: no change
    await engine.cancel(blocker.id)
    await trio.sleep(5)
    assert waiting.state is JobState.PAUSED and "w:0" not in JOURNAL
    assert engine.resume(waiting.id)
    await waiting.completed.wait()
    assert await engine.pause(waiting.id)  # ended: no change
    assert waiting.state is JobState.SUCCESS


async def test_cancel_while_pending_running_and_paused(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any
) -> None:
    engine = await start_engine(nursery, tmp_path)
    running = await engine.submit(StepsJob(3, delay=1.0, label="r"))
    pending = await engine.submit(StepsJob(1, label="p"))
    paused = await engine.submit(StepsJob(1, label="z"))
    await engine.pause(paused.id)
    await trio.sleep(0.5)
    for record in (pending, paused, running):
        assert await engine.cancel(record.id)
        assert record.state is JobState.FAILURE
        assert record.error_code is ErrorCode.CANCELED_JOB
        assert record.completed.is_set()
        assert record.to_json(record.last_change)["ErrorDescription"] == "This job was canceled"
    assert await engine.cancel(running.id)  # already ended: no change
    assert running.error_code is ErrorCode.CANCELED_JOB
    await trio.sleep(1)
    assert JOURNAL.count("r:0") == 1 and "p:0" not in JOURNAL and "z:0" not in JOURNAL
    assert "r:stop:Canceled" in JOURNAL


async def test_cancel_frees_a_worker_blocked_on_io(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    blocker = await running_blocker(engine)
    await trio.sleep(60)  # blocked on a socket that never answers
    waiting = await engine.submit(StepsJob(1, label="next"))
    asked = trio.current_time()
    await engine.cancel(blocker.id)
    with trio.fail_after(0.1):
        await until(lambda: waiting.state is not JobState.PENDING)
    assert blocker.state is JobState.FAILURE and blocker.error_code is ErrorCode.CANCELED_JOB
    assert trio.current_time() - asked < 0.1


async def test_failure_then_resubmit_restarts(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(StepsJob(3, delay=1.0, label="f", fail_at=1))
    await record.completed.wait()
    assert record.state is JobState.FAILURE
    assert (record.error_code, record.error_details) == (ErrorCode.NETWORK_PROTOCOL, "step 1 failed")
    assert record.runtime == pytest.approx(2.0)
    creation = record.creation_time

    record.job.fail_at = None  # type: ignore[attr-defined]
    assert engine.resubmit(record.id)
    assert record.state is JobState.PENDING and record.runtime == 0
    assert record.to_json(record.last_change)["Progress"] == 0
    await record.completed.wait()
    assert record.state is JobState.SUCCESS and record.creation_time == creation
    await trio.sleep(0.01)  # the stop hook runs after the job ended
    assert JOURNAL == ["f:0", "f:1", "f:stop:Failure", "f:0", "f:1", "f:2", "f:stop:Success"]


async def test_refused_transitions(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    blocker = await running_blocker(engine)
    pending = await engine.submit(StepsJob(1))
    for record in (blocker, pending):
        assert not engine.resume(record.id)
        assert not engine.resubmit(record.id)
    assert not engine.resume("unknown") and not engine.resubmit("unknown")
    assert not await engine.pause("unknown") and not await engine.cancel("unknown")
    archive = await engine.submit(ArchiveLikeJob(1))
    await engine.cancel(archive.id)
    with pytest.raises(OrthancError) as refused:
        engine.resubmit(archive.id)
    assert refused.value.code is ErrorCode.BAD_SEQUENCE_OF_CALLS
    assert archive.state is JobState.FAILURE


async def test_retry_requeues_after_its_delay(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(StepsJob(2, label="r", retry_at=0))
    await until(lambda: record.state is JobState.RETRY)
    entered = trio.current_time()
    await record.completed.wait()
    assert trio.current_time() - entered == pytest.approx(5.0, abs=0.01)
    assert record.state is JobState.SUCCESS
    await trio.sleep(0.01)  # the stop hook runs after the job ended
    assert JOURNAL == ["r:0", "r:stop:Retry", "r:0", "r:1", "r:stop:Success"]


async def test_pause_of_retrying_job(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(StepsJob(1, label="r", retry_at=0))
    await until(lambda: record.state is JobState.RETRY)
    assert await engine.pause(record.id)
    await trio.sleep(20)
    assert record.state is JobState.PAUSED
    engine.resume(record.id)
    await record.completed.wait()
    assert record.state is JobState.SUCCESS


async def test_permissive_skips_failed_instances(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    instances = ["a", "bad1", "gone1", "b"]
    strict = await engine.submit(InstancesJob(instances))
    permissive_job = InstancesJob(instances)
    permissive_job.permissive = True
    permissive = await engine.submit(permissive_job)
    await strict.completed.wait()
    await permissive.completed.wait()
    assert strict.state is JobState.FAILURE
    assert (strict.error_code, strict.error_details) == (ErrorCode.NETWORK_PROTOCOL, "cannot send bad1")
    answer = permissive.to_json(permissive.last_change)
    assert answer["State"] == "Success" and answer["Progress"] == 100
    assert answer["Content"] == {"Description": "REST API", "FailedInstancesCount": 2, "InstancesCount": 4}


async def test_job_without_steps_succeeds_at_once(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(InstancesJob([]))
    await record.completed.wait()
    assert record.to_json(record.last_change)["Progress"] == 100 and record.state is JobState.SUCCESS


async def test_running_job_fields(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path)
    record = await engine.submit(StepsJob(4, delay=1.0), priority=-3)
    await trio.sleep(2.5)
    answer = record.to_json(record.last_change)
    assert answer["State"] == "Running" and answer["Progress"] == 50 and answer["Priority"] == -3
    assert answer["EffectiveRuntime"] == 2.0  # accounted after each step
    assert "EstimatedTimeOfArrival" in answer and "CompletionTime" not in answer
    await record.completed.wait()
    answer = record.to_json(record.last_change)
    assert answer["CompletionTime"] >= answer["CreationTime"] and "EstimatedTimeOfArrival" not in answer


async def test_history_keeps_the_latest_completed(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path, JobsHistorySize=2)
    records = [await engine.submit(StepsJob(1, delay=1.0)) for _ in range(3)]
    for record in records:
        await record.completed.wait()
    assert engine.get(records[0].id) is None
    assert [engine.get(r.id) for r in records[1:]] == records[1:]
    # Each new completion pushes the oldest one out.
    failed = await engine.submit(StepsJob(1, fail_at=0))
    await failed.completed.wait()
    assert engine.get(records[1].id) is None
    assert engine.delete(failed.id) and engine.get(failed.id) is None
    assert not engine.delete(failed.id)


async def test_history_size_zero_forgets_and_sync_calls_fail(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any
) -> None:
    engine = await start_engine(nursery, tmp_path, JobsHistorySize=0)
    with pytest.raises(OrthancError) as error:
        await submit(engine, StepsJob(1), submit_options({}, synchronous=True))
    assert error.value.code is ErrorCode.INEXISTENT_ITEM
    assert error.value.details == 'Cannot retrieve the status of the job, make sure that "JobsHistorySize" is not 0'
    assert engine.records() == []


def output_job(tmp_path: Path, name: str) -> StepsJob:
    return StepsJob(1, delay=1.0, output=name, output_path=str(tmp_path / f"{name}.zip"))


async def test_outputs_least_recently_used(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path, MediaArchiveSize=2)
    first, second, third = [await engine.submit(output_job(tmp_path, name)) for name in ("a", "b", "c")]
    await second.completed.wait()
    assert engine.output(first.id, "archive") is not None  # read: now the most recently used
    await third.completed.wait()
    assert engine.output(second.id, "archive") is None
    assert engine.output(first.id, "other") is None
    with trio.fail_after(1):
        await until(lambda: not (tmp_path / "b.zip").exists())  # evicted: its file is deleted
    output = engine.output(first.id, "archive")
    assert output is not None and output.path is not None and output.path.read_bytes() == b"a"
    assert engine.delete_output(third.id, "archive") and not engine.delete_output(third.id, "archive")


async def test_history_eviction_takes_the_output(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    engine = await start_engine(nursery, tmp_path, MediaArchiveSize=5, JobsHistorySize=1)
    first, second = [await engine.submit(output_job(tmp_path, name)) for name in ("a", "b")]
    await second.completed.wait()
    assert engine.get(first.id) is None and engine.output(second.id, "archive") is not None
    with trio.fail_after(1):
        await until(lambda: not (tmp_path / "a.zip").exists())
