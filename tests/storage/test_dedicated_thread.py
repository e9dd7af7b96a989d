"""The writer's thread lends its turn to the event loop (try_hold) only when nothing of its own
waits: under steady stores the loop would otherwise take the turn back at each release, before
the thread woke to the work queued there (the jobs' writes, the name journal, checkpoints)."""

from __future__ import annotations

import threading

import trio

from node.storage.thread import DedicatedThread

WAIT = 30  # s: a bound on waiting for the other thread, never reached when the code is right


async def test_the_turn_is_lent_only_when_the_thread_has_nothing_to_do() -> None:
    thread = DedicatedThread("test-writer")
    running, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def busy() -> None:
        running.set()
        assert release.wait(WAIT)

    try:
        assert thread.try_hold(), "an idle thread lends its turn"
        thread.post(ran.append, "queued while held")
        thread.release()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread.run, busy)
            assert await trio.to_thread.run_sync(running.wait, WAIT)
            assert not thread.try_hold(), "not while a call runs on the thread"
            thread.post(ran.append, "queued behind the running call")
            release.set()
        await thread.run(lambda: None)  # behind everything posted before it
        assert ran == ["queued while held", "queued behind the running call"]
        assert thread.try_hold(), "idle again"
        thread.release()
    finally:
        release.set()
        thread.stop()


async def test_a_call_waiting_for_a_lent_turn_gets_it_next() -> None:
    thread = DedicatedThread("test-writer")
    ran: list[str] = []
    try:
        assert thread.try_hold()
        thread.post(ran.append, "waited for the turn")
        with trio.fail_after(WAIT):
            while not thread._waiting:  # white box: the thread took the call and waits for the turn
                await trio.sleep(0)
        thread.release()
        assert not thread.try_hold(), "the waiting call goes first"
        await thread.run(lambda: None)
        assert ran == ["waited for the turn"]
    finally:
        thread.stop()
