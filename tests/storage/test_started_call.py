"""StartedCall: a blocking call started in a worker thread and awaited later (what ingest overlaps
the file write with). Real threads; each step is ordered by events, never by sleeps."""

from __future__ import annotations

import threading

import pytest
import trio

from node.storage.thread import StartedCall

WAIT = 30  # s: a bound on waiting for the other thread, never reached when the code is right


async def test_the_value_or_the_exception_of_the_call_is_delivered() -> None:
    ok: StartedCall[int] = StartedCall()
    ok.start(lambda a, b: a + b, 2, 3)
    assert await ok.wait() == 5
    failing: StartedCall[int] = StartedCall()
    failing.start(int, "not a number")
    with pytest.raises(ValueError):
        await failing.wait()


async def test_reached_wakes_the_task_while_the_call_goes_on() -> None:
    release = threading.Event()
    pending: StartedCall[str] = StartedCall()

    def call() -> str:
        pending.reached()
        assert release.wait(WAIT)
        return threading.current_thread().name

    pending.start(call)
    await pending.wait_reached()  # the call is still blocked on ``release``
    release.set()
    assert await pending.wait() != threading.current_thread().name  # it ran in another thread


async def test_wait_reached_returns_when_the_call_ends_without_reaching() -> None:
    pending: StartedCall[None] = StartedCall()
    pending.start(lambda: None)
    await pending.wait_reached()
    assert await pending.wait() is None


async def test_a_cancelled_waiter_still_waits_for_the_call_to_end() -> None:
    """Cancelling the task cannot abandon the call half-done: wait() returns only once it ended."""
    release, ended = threading.Event(), threading.Event()
    pending: StartedCall[None] = StartedCall()

    def call() -> None:
        pending.reached()
        assert release.wait(WAIT)
        ended.set()

    pending.start(call)
    await pending.wait_reached()
    with trio.CancelScope() as scope:
        scope.cancel()
        release.set()
        await pending.wait()
    assert ended.is_set()
    assert not scope.cancelled_caught  # the shielded wait ran to its end; the cancel hit nothing after it


async def test_under_a_virtual_clock_the_call_runs_inline(autojump_clock: trio.testing.MockClock) -> None:
    thread = threading.current_thread()
    pending: StartedCall[threading.Thread] = StartedCall()
    pending.start(threading.current_thread)
    await pending.wait_reached()
    assert await pending.wait() is thread


async def test_a_deferred_call_runs_in_the_thread_that_needs_its_result_first() -> None:
    """The index thread asking for a deferred write runs it there; the task then gets the same value."""
    runs: list[str] = []
    pending: StartedCall[str] = StartedCall()

    def call() -> str:
        runs.append(threading.current_thread().name)
        return runs[-1]

    pending.defer(call)
    other = await trio.to_thread.run_sync(pending.result_blocking)
    assert other != threading.current_thread().name
    assert await pending.wait() == other
    assert runs == [other]  # run once, where it was first needed
    assert not pending.drop()


async def test_a_deferred_call_nobody_took_starts_in_a_worker_when_awaited() -> None:
    pending: StartedCall[str] = StartedCall()
    pending.defer(lambda: threading.current_thread().name)
    assert await pending.wait() != threading.current_thread().name
    assert not pending.drop()


async def test_a_dropped_deferred_call_never_runs() -> None:
    runs: list[None] = []
    pending: StartedCall[None] = StartedCall()
    pending.defer(runs.append, None)
    assert pending.drop()
    assert not pending.drop()  # dropped once only
    assert runs == []


async def test_a_task_waiting_while_another_thread_runs_the_deferred_call_is_woken() -> None:
    entered, release = threading.Event(), threading.Event()
    pending: StartedCall[int] = StartedCall()

    def call() -> int:
        entered.set()
        assert release.wait(WAIT)
        return 7

    async def waiter() -> None:
        got.append(await pending.wait())

    got: list[int] = []
    pending.defer(call)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, pending.result_blocking)
        assert await trio.to_thread.run_sync(entered.wait, WAIT)
        assert not pending.drop()  # taken by the other thread: it will run to its end
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()  # the waiter waits on the call
        assert got == []
        release.set()
    assert got == [7]
