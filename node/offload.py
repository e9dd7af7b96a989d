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
pool of its own, and awaited later with the same rules; what such a thread hands back to
Trio (a call to a worker process) is cancelled with it (:class:`CancelHandle`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import trio
from trio.testing import MockClock

from .errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)

T = TypeVar("T")


# The clock last asked about, and whether it is a virtual one: the answer is asked several times
# per store, and an isinstance check against Trio's clock class (an abstract one) is slow.
_last_clock: tuple[object, bool] = (None, False)


def under_virtual_clock() -> bool:
    global _last_clock
    clock = trio.lowlevel.current_clock()
    if _last_clock[0] is not clock:
        _last_clock = (clock, isinstance(clock, MockClock))
    return _last_clock[1]


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
    """Worker threads for work started ahead: they bound the CPU it takes (archives deflating).
    One more than the cores: while one thread deflates, the others may wait on worker processes
    (archives transcoding), whose cores would idle without it."""
    global _ahead_pool
    if _ahead_pool is None:
        _ahead_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1) + 1, thread_name_prefix="ahead")
    return _ahead_pool


@dataclass(eq=False)
class CancelHandle:
    """The way back from a thread of :func:`offload_ahead` to the Trio run that started its work:
    what the thread hands to that run (through ``token``) runs in :meth:`scope`, which
    :meth:`Pending.cancel` cancels. Both methods are the Trio thread's."""

    token: trio.lowlevel.TrioToken
    cancelled: bool = False
    _scopes: set[trio.CancelScope] = field(default_factory=set)

    @contextlib.contextmanager
    def scope(self) -> Iterator[trio.CancelScope]:
        with trio.CancelScope() as scope:
            if self.cancelled:
                scope.cancel()
            self._scopes.add(scope)
            try:
                yield scope
            finally:
                self._scopes.discard(scope)

    def cancel(self) -> None:
        self.cancelled = True
        for scope in self._scopes:
            scope.cancel()


_cancel_handle: contextvars.ContextVar[CancelHandle | None] = contextvars.ContextVar("cancel_handle", default=None)


def current_cancel_handle() -> CancelHandle | None:
    """The handle of the :func:`offload_ahead` work running in this thread, if any."""
    return _cancel_handle.get()


class Pending(Generic[T]):
    """Work started by :func:`offload_ahead`: await :meth:`result`, or :meth:`cancel` it."""

    def __init__(self, fn: Callable[..., T], future: Future[T], handle: CancelHandle | None = None) -> None:
        self._fn = fn
        self._future = future
        self._handle = handle

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
        """Drop the work if it has not started yet, and cancel what it handed back to Trio (see
        :class:`CancelHandle`); its result is never awaited."""
        self._future.cancel()
        if self._handle is not None:
            self._handle.cancel()


def offload_ahead(fn: Callable[..., T], *args: Any) -> Pending[T]:
    """Start ``fn(*args)`` in a worker thread now, for a task to await later (inline under a
    virtual clock, as :func:`offload`)."""
    if not under_virtual_clock():
        handle = CancelHandle(trio.lowlevel.current_trio_token())
        context = contextvars.copy_context()
        context.run(_cancel_handle.set, handle)
        return Pending(fn, _ahead_threads().submit(context.run, fn, *args), handle)
    future: Future[T] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:  # delivered by Pending.result, as a thread's would be
        future.set_exception(exc)
    return Pending(fn, future)
