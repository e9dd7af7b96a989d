"""Short blocking work (disk, parsing, compression) run off the event loop.

Under a virtual clock (the tests of timed behaviour) a task waiting on a
thread counts as blocked, so an autojumping MockClock would let virtual time
run while the thread works and outcomes would depend on thread timing. There
the same call runs inline: identical code, virtual time standing still.

This is also where the work of one request or job meets the node: a call that
exhausts the stack or the memory fails that caller with an Orthanc error, and the
node, whose own state such a failure does not touch, goes on serving the others.

Work that must run ahead of the task that needs it (an archive reads and deflates the
next files while the previous one goes out) is started with :func:`offload_ahead` on a
pool of its own, and awaited later with the same rules.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

import trio
from trio.testing import MockClock

from .errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)

T = TypeVar("T")


def under_virtual_clock() -> bool:
    return isinstance(trio.lowlevel.current_clock(), MockClock)


@contextlib.contextmanager
def _failing_alone(fn: Callable[..., Any]) -> Iterator[None]:
    """RecursionError and MemoryError of ``fn`` become OrthancError (errors -1 and 4)."""
    try:
        yield
    except RecursionError:
        log.exception("%r exhausted the stack", fn)
        raise OrthancError(ErrorCode.INTERNAL_ERROR, "The data is nested too deeply to be processed") from None
    except MemoryError:
        log.exception("%r exhausted the memory", fn)
        raise OrthancError(ErrorCode.NOT_ENOUGH_MEMORY) from None


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (inline under a virtual clock).

    RecursionError and MemoryError become OrthancError (errors -1 and 4); anything else
    goes through unchanged.
    """
    with _failing_alone(fn):
        if under_virtual_clock():
            await trio.lowlevel.cancel_shielded_checkpoint()
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args)


# One lock per library that must not run in two worker threads at once (see one_at_a_time).
_exclusive: dict[str, threading.Lock] = {}
_exclusive_guard = threading.Lock()


def one_at_a_time(name: str) -> contextlib.AbstractContextManager[bool]:
    """A lock shared by every worker thread that calls the library ``name``, for code that is
    not safe to run concurrently (it crashes the process, not just the caller)."""
    with _exclusive_guard:
        return _exclusive.setdefault(name, threading.Lock())


_ahead_pool: ThreadPoolExecutor | None = None


def _ahead_threads() -> ThreadPoolExecutor:
    """Worker threads for work started ahead: they bound the CPU it takes (archives deflating)."""
    global _ahead_pool
    if _ahead_pool is None:
        _ahead_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="ahead")
    return _ahead_pool


class Pending(Generic[T]):
    """Work started by :func:`offload_ahead`: await :meth:`result`, or :meth:`cancel` it."""

    def __init__(self, fn: Callable[..., T], future: Future[T]) -> None:
        self._fn = fn
        self._future = future

    async def result(self) -> T:
        """The result, once the work is done, without holding a thread for the wait."""
        future = self._future
        if not future.done():
            token = trio.lowlevel.current_trio_token()
            done = trio.Event()

            def wake(_: Future[T]) -> None:
                with contextlib.suppress(trio.RunFinishedError):  # the node stopped meanwhile
                    token.run_sync_soon(done.set)

            future.add_done_callback(wake)
            await done.wait()
        with _failing_alone(self._fn):
            return future.result()

    def cancel(self) -> None:
        """Drop the work if it has not started yet; its result is never awaited."""
        self._future.cancel()


def offload_ahead(fn: Callable[..., T], *args: Any) -> Pending[T]:
    """Start ``fn(*args)`` in a worker thread now, for a task to await later (inline under a
    virtual clock, as :func:`offload`)."""
    if not under_virtual_clock():
        return Pending(fn, _ahead_threads().submit(fn, *args))
    future: Future[T] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # delivered by Pending.result, as a thread's would be
        future.set_exception(exc)
    return Pending(fn, future)
