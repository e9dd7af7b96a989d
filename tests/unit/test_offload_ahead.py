"""node.offload.offload_ahead: work started now on a worker thread, awaited later by a task."""

from __future__ import annotations

import threading

import pytest
import trio

from node.errors import ErrorCode, OrthancError
from node.offload import offload_ahead


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


async def test_work_runs_on_another_thread_and_its_result_is_awaited() -> None:
    started = threading.Event()
    release = threading.Event()

    def work(value: int) -> tuple[int, int]:
        started.set()
        release.wait(10)
        return value * 2, threading.get_ident()

    pending = offload_ahead(work, 21)
    await trio.to_thread.run_sync(started.wait, 10)  # running before anyone awaits it
    release.set()
    value, thread = await pending.result()
    assert value == 42 and thread != threading.get_ident()


async def test_exhausted_stack_fails_the_awaiting_task_with_error_minus_one() -> None:
    pending = offload_ahead(_recurse, 0)
    with pytest.raises(OrthancError) as raised:
        await pending.result()
    assert raised.value.code is ErrorCode.INTERNAL_ERROR


async def test_other_errors_reach_the_awaiting_task_unchanged() -> None:
    def fail() -> None:
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        await offload_ahead(fail).result()


async def test_under_a_virtual_clock_the_work_runs_inline(autojump_clock: trio.testing.MockClock) -> None:
    caller = threading.get_ident()
    pending = offload_ahead(threading.get_ident)
    assert await pending.result() == caller
    with pytest.raises(OrthancError) as raised:
        await offload_ahead(_recurse, 0).result()
    assert raised.value.code is ErrorCode.INTERNAL_ERROR
