"""A dedicated OS thread that runs blocking calls in order for Trio tasks.

SQLite wants one writer; giving it one thread of its own keeps every blocking
call off the event loop and serializes them without locks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from ..offload import under_virtual_clock

T = TypeVar("T")

_STOP = object()


class DedicatedThread:
    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is _STOP:
                return
            work()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread and wait for it.

        Cancellation waits for the call to finish: a half-run database
        transaction must never be abandoned.
        """
        if under_virtual_clock():
            await trio.lowlevel.cancel_shielded_checkpoint()
            return fn(*args)
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def work() -> None:
            result = outcome.capture(fn, *args)
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._queue.put(work)
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run from a foreign (non-Trio) thread, e.g. at start-up or shutdown."""
        done = threading.Event()
        box: list[outcome.Outcome] = []

        def work() -> None:
            box.append(outcome.capture(fn, *args))
            done.set()

        self._queue.put(work)
        done.wait()
        return box[0].unwrap()

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
