"""node.worker_processes: calls run in a bounded pool of worker processes, a cancelled call kills
its process and frees its slot at once, and work started ahead is cancelled with its Pending."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from node.dicom.transcode import CannotTranscode
from node.errors import ErrorCode, OrthancError
from node.offload import offload, offload_ahead
from node.worker_processes import WorkerDied, WorkerProcesses, run_blocking
from tests.support import worker_calls

CALLS_DEADLINE = 60  # seconds: a deadlock fails the test instead of hanging it


@pytest.fixture
def pool() -> Iterator[WorkerProcesses]:
    workers = WorkerProcesses(size=1)
    yield workers
    workers.close()


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


def _worker_pids() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.name == "worker-process" and child.pid}


async def test_a_call_runs_in_another_process_which_is_kept_for_the_next(pool: WorkerProcesses) -> None:
    first = await pool.run(worker_calls.own_pid)
    second = await pool.run(worker_calls.own_pid)
    assert first == second != os.getpid()
    assert pool.started == 1


async def test_errors_reach_the_caller(pool: WorkerProcesses) -> None:
    with pytest.raises(ValueError, match="bad input"):
        await pool.run(worker_calls.fail_with_value_error, "bad input")
    with pytest.raises(CannotTranscode) as raised:
        await pool.run(worker_calls.fail_cannot_transcode, "1.2.840.10008.1.2.4.80")
    assert (raised.value.target, raised.value.reason) == ("1.2.840.10008.1.2.4.80", "a reason")
    with pytest.raises(RuntimeError, match="OrthancError: detail"):
        await pool.run(worker_calls.fail_with_orthanc_error)
    assert pool.started == 1  # a failing call does not cost its process


async def test_a_crash_fails_its_call_only(pool: WorkerProcesses) -> None:
    with pytest.raises(WorkerDied):
        await pool.run(worker_calls.crash)
    assert await pool.run(worker_calls.own_pid) != os.getpid()
    assert pool.started == 2


async def test_calls_beyond_the_bound_wait_for_a_slot(pool: WorkerProcesses, fifo: str) -> None:
    results: list[object] = []

    async def call(fn: object, *args: object) -> None:
        results.append(await pool.run(fn, *args))  # type: ignore[arg-type]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(call, worker_calls.read_fifo, fifo)
        writer = await trio.to_thread.run_sync(open, fifo, "wb")  # the first call is running
        nursery.start_soon(call, worker_calls.own_pid)
        await trio.testing.wait_all_tasks_blocked()
        assert pool.busy == 1 and results == []  # the second waits
        writer.write(b"done")
        writer.close()
    assert results[0] == b"done" and isinstance(results[1], int)
    assert pool.started == 1


async def test_a_cancelled_call_kills_its_process_and_frees_its_slot(pool: WorkerProcesses, fifo: str) -> None:
    before = _worker_pids()
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def call() -> None:
            with scope:
                await pool.run(worker_calls.read_fifo, fifo)

        nursery.start_soon(call)
        writer = await trio.to_thread.run_sync(open, fifo, "wb")
        running = _worker_pids() - before
        assert len(running) == 1
        scope.cancel()
    try:
        assert pool.busy == 0
        assert _worker_pids() - before == set()  # killed, not left to finish
        assert await pool.run(worker_calls.own_pid) not in running
        assert pool.started == 2
    finally:
        writer.close()


async def test_a_worker_thread_call_is_cancelled_with_its_task(pool: WorkerProcesses, fifo: str) -> None:
    before = _worker_pids()
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def call() -> None:
            with scope:
                await offload(run_blocking, pool, worker_calls.read_fifo, fifo)

        nursery.start_soon(call)
        writer = await trio.to_thread.run_sync(open, fifo, "wb")
        scope.cancel()
    writer.close()
    assert scope.cancelled_caught
    assert pool.busy == 0 and _worker_pids() - before == set()


async def test_work_started_ahead_is_cancelled_with_its_pending(pool: WorkerProcesses, fifo: str) -> None:
    before = _worker_pids()
    pending = offload_ahead(run_blocking, pool, worker_calls.read_fifo, fifo)
    writer = await trio.to_thread.run_sync(open, fifo, "wb")
    pending.cancel()
    with pytest.raises(OrthancError) as raised:
        await pending.result()
    writer.close()
    assert raised.value.code is ErrorCode.CANCELED_JOB
    assert pool.busy == 0 and _worker_pids() - before == set()


async def test_work_started_ahead_returns_its_result(pool: WorkerProcesses) -> None:
    assert await offload_ahead(run_blocking, pool, worker_calls.own_pid).result() != os.getpid()


async def test_outside_of_a_trio_thread_the_call_runs_inline(pool: WorkerProcesses) -> None:
    assert run_blocking(pool, worker_calls.own_pid) == os.getpid()  # in the Trio thread itself
    assert await pool.run(worker_calls.own_pid) != os.getpid()


async def test_under_a_virtual_clock_calls_run_inline(
    pool: WorkerProcesses, autojump_clock: trio.testing.MockClock
) -> None:
    assert await pool.run(worker_calls.own_pid) == os.getpid()
    assert pool.started == 0


async def test_calls_from_every_worker_thread_at_once_all_complete(pool: WorkerProcesses) -> None:
    """The threads that wait on the processes do not compete for the tokens the callers' threads hold."""
    trio.to_thread.current_default_thread_limiter().total_tokens = 2
    results: list[int] = []

    async def call() -> None:
        results.append(await offload(run_blocking, pool, worker_calls.own_pid))

    with trio.fail_after(CALLS_DEADLINE):
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(call)
    assert len(results) == 3 and os.getpid() not in results
