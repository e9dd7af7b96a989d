"""Blocking calls run in OS threads for Trio tasks: in order on a dedicated thread, or
started at once and awaited later.

SQLite wants one writer; giving it one thread of its own keeps every blocking
call off the event loop and serializes them without locks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

import outcome
import trio

from ..offload import under_virtual_clock

T = TypeVar("T")

_STOP = object()


class DedicatedThread:
    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # Held by each call: under a virtual clock, calls run inline on the event loop while a
        # foreign thread's (run_blocking) still run on the thread; one at a time all the same.
        self._serial = threading.Lock()
        self._waiting = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is _STOP:
                return
            self._waiting = True  # for the turn, while try_hold lent it (see try_hold)
            with self._serial:
                self._waiting = False
                work()

    def try_hold(self) -> bool:
        """Take the thread's turn for the caller's own thread, if nothing runs or waits on it
        now (so that the thread's own calls are never held back for long): calls queued
        meanwhile wait until :meth:`release` (from the same thread)."""
        return not self._waiting and self._queue.empty() and self._serial.acquire(blocking=False)

    def release(self) -> None:
        self._serial.release()

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Queue ``fn(*args)`` on the thread without waiting for it (nobody sees its result: it
        logs its own failures)."""
        self._queue.put(partial(fn, *args))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread and wait for it.

        Cancellation waits for the call to finish: a half-run database
        transaction must never be abandoned.
        """
        if under_virtual_clock():
            await trio.lowlevel.cancel_shielded_checkpoint()
            with self._serial:
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


class StartedCall(Generic[T]):
    """A blocking call started at once in a worker thread, its result awaited later with :meth:`wait`.

    What it is for: a Trio task overlapping a blocking call (a file write and its flushes)
    with work of its own. It costs half of what ``trio.to_thread.run_sync`` does (trio's
    thread cache without the limiter and the cancellation machinery), and the call always
    runs to its end: nothing can abandon it half-done. Under a virtual clock the call runs
    inline, right away (see :func:`under_virtual_clock`).

    Unlike :func:`~node.offload.offload_ahead` (CPU work read ahead, on a pool as large as the
    CPUs, cancellable), every call gets a thread at once, so the flushes of concurrent stores
    overlap and share the file system's journal commits; and another thread (the index's) can
    wait for it too (:meth:`result_blocking`).

    The call may tell the task when it reaches a long wait of its own (:meth:`reached`,
    from the thread): Python threads take turns, so work the task does before that point
    only delays the call, and work it does after runs meanwhile.

    The thread wakes the event loop only when a task is waiting: when the index thread
    already took the result (:meth:`result_blocking`) and the task finds the call ended, the
    end costs the event loop nothing.

    A call may also be deferred (:meth:`defer`): it then runs in whichever thread asks for its
    result first (:meth:`result_blocking` runs it there, inline; :meth:`wait` starts it in a
    worker, as :meth:`start_deferred` does), or never (:meth:`drop`). When there is nothing to
    overlap the call with, running it in the thread that needs it spares the worker thread,
    its start and the wake-ups between threads.
    """

    def __init__(self) -> None:
        self._token: trio.lowlevel.TrioToken | None = None
        self._ended = threading.Event()  # the end, for every thread (see result_blocking)
        self._outcome: outcome.Outcome[T] | None = None
        self._reached = False
        # Set by a waiting task before it checks the state again; the thread sets the state
        # before it looks here. One of the two sees the other (one thread runs Python at a time).
        self._wakeup: trio.Event | None = None
        self._deferred: Callable[[], T] | None = None  # see defer; taken under _claim_lock
        self._claim_lock = threading.Lock()

    def defer(self, fn: Callable[..., T], *args: Any) -> None:
        """Keep ``fn(*args)`` to be run by the first thread that needs its result; once only.
        From a Trio task, like :meth:`start`."""
        if not under_virtual_clock():
            self._token = trio.lowlevel.current_trio_token()
        self._deferred = partial(fn, *args)

    def _claim(self) -> Callable[[], T] | None:
        """The deferred call, for the one thread that takes it; None once taken (or never deferred)."""
        with self._claim_lock:
            deferred, self._deferred = self._deferred, None
        return deferred

    def start_deferred(self) -> None:
        """Start the deferred call in a worker thread now, unless a thread took it already."""
        deferred = self._claim()
        if deferred is not None:
            self._start(deferred)

    def drop(self) -> bool:
        """Forget the deferred call if no thread took it yet: True if it will never run."""
        return self._claim() is not None

    def start(self, fn: Callable[..., T], *args: Any) -> None:
        """Run ``fn(*args)``; once only."""
        self._start(partial(fn, *args))

    def _start(self, call: Callable[[], T]) -> None:
        if under_virtual_clock():
            self._end(outcome.capture(call))
            return
        self._token = trio.lowlevel.current_trio_token()
        trio.lowlevel.start_thread_soon(call, self._deliver)

    def _deliver(self, result: outcome.Outcome[T]) -> None:
        """In the thread, once the call returned."""
        self._end(result)
        self._wake()

    def _end(self, result: outcome.Outcome[T]) -> None:
        self._outcome = result
        self._reached = True
        self._ended.set()

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and self._token is not None:
            self._token.run_sync_soon(wakeup.set)

    def reached(self) -> None:
        """From the call, in its thread: it is about to wait (see :meth:`wait_reached`)."""
        self._reached = True
        self._wake()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            if self._wakeup is None or self._wakeup.is_set():
                self._wakeup = trio.Event()
            wakeup = self._wakeup
            if condition():
                return
            await wakeup.wait()

    async def wait_reached(self) -> None:
        """Until the call said it :meth:`reached` its wait, or ended."""
        await self._until(lambda: self._reached)

    async def wait(self) -> T:
        """The call's value, or its exception raised here; not cancellable (the call cannot be
        stopped). May be awaited again: the same outcome each time. A deferred call no thread
        took yet starts in a worker thread."""
        await self.wait_ended()
        return self._value()

    async def wait_ended(self) -> None:
        """:meth:`wait` without the outcome: for a caller that only needs the call over, and
        leaves its value or exception to whoever waits for it next."""
        self.start_deferred()
        if not self._ended.is_set():
            with trio.CancelScope(shield=True):
                await self._until(self._ended.is_set)

    def result_blocking(self) -> T:
        """:meth:`wait` for another thread (never the task's: it blocks until the call ended).
        A deferred call no thread took yet runs here."""
        deferred = self._claim()
        if deferred is not None:
            self._deliver(outcome.capture(deferred))
        self._ended.wait()
        return self._value()

    def _value(self) -> T:
        # type(), not isinstance: Outcome is an abstract class, whose isinstance checks are slow.
        if type(self._outcome) is outcome.Error:
            raise self._outcome.error
        assert type(self._outcome) is outcome.Value
        return self._outcome.value


def blocking_wait(call: StartedCall[T] | None) -> Callable[[], T] | None:
    """What a thread calls to wait for ``call`` (see :meth:`StartedCall.result_blocking`)."""
    return None if call is None else call.result_blocking
