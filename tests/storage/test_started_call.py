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
