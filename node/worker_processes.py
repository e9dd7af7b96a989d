"""CPU-heavy calls run in a small pool of worker processes, for libraries that a thread cannot share.

Some codecs hold the GIL for the whole of a call (CharLS through pyjpegls: a JPEG-LS slice
stops every other thread, the event loop included, for its duration) or crash the process
when two threads use them at once (OpenJPEG's encoder). In a worker process of its own such
a call runs beside the event loop and beside the other calls, and a crash costs that call
only (it fails with Orthanc's internal error; the next call gets a new process).

The pool is bounded: at most :data:`WORKER_PROCESSES` calls run at once, one per process; the
others wait their turn. Processes are started on first use (``spawn``: the node has threads,
which a forked child would inherit in whatever state they were) and kept for the next calls.

Cancellation frees the slot at once: the task awaiting a call that is cancelled kills the
process running it rather than letting it finish. Calls made from worker threads
(:func:`run_blocking`) follow the task that started the thread (through
:func:`trio.to_thread.run_sync`), or the :class:`~node.offload.Pending` work they belong to.

Under a virtual clock (tests of timed behaviour) and outside of Trio, calls run inline, in
the calling thread: the same code, without processes.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final, TypeVar

import trio

from .errors import ErrorCode, OrthancError
from .offload import CancelHandle, current_cancel_handle, under_virtual_clock

log = logging.getLogger(__name__)

T = TypeVar("T")

# As many processes as cores: the calls are CPU-bound, more would only queue on the cores.
WORKER_PROCESSES: Final = max(1, os.cpu_count() or 1)
_CONTEXT: Final = multiprocessing.get_context("spawn")


class WorkerDied(OrthancError):
    """The process running a call ended without answering (killed, or crashed in a library)."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.INTERNAL_ERROR, "A worker process ended during its work")


def _outcome_bytes(fn: Callable[..., Any], args: tuple[Any, ...]) -> bytes:
    """``fn(*args)`` pickled as (True, result) or (False, exception); an exception that does not
    survive pickling is sent as a RuntimeError naming it."""
    try:
        return pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # the caller's to handle, in the parent
        try:
            payload = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(payload)
        except Exception:  # an exception whose class cannot be rebuilt from its arguments
            payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
        return payload


def _serve(connection: Connection) -> None:
    """A worker process's life: calls in, outcomes out, until the node closes its end."""
    while True:
        try:
            fn, args = connection.recv()
        except (EOFError, OSError):
            return
        connection.send_bytes(_outcome_bytes(fn, args))


class _Worker:
    """One process and the parent's end of its pipe."""

    def __init__(self) -> None:
        self.connection, child = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(target=_serve, args=(child,), name="worker-process", daemon=True)
        self.process.start()
        child.close()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        """Send a call and wait for its outcome (blocking: a worker thread's). A process that ends
        meanwhile (killed or crashed) closes its pipe: this thread, the one reading it, closes
        the parent's end, so that no other thread can see its descriptor reused."""
        try:
            self.connection.send((fn, args))
            return pickle.loads(self.connection.recv_bytes())
        except (EOFError, OSError):
            self.connection.close()
            raise WorkerDied() from None

    def kill(self) -> None:
        """End the process now, whatever it runs."""
        with contextlib.suppress(OSError, ValueError):
            self.process.kill()

    def reap(self) -> None:
        """Wait for a killed process to be gone (blocking, short)."""
        self.process.join()
        with contextlib.suppress(ValueError):
            self.process.close()

    def discard(self) -> None:
        """Stop an idle process (no thread reads its pipe)."""
        self.kill()
        self.connection.close()
        self.reap()


class WorkerProcesses:
    """The bounded pool (see the module's docstring)."""

    def __init__(self, size: int = WORKER_PROCESSES) -> None:
        self.size = size
        self._idle: list[_Worker] = []
        self._idle_lock = threading.Lock()  # the pool may serve more than one Trio run in a process
        self._limits: trio.lowlevel.RunVar[tuple[trio.CapacityLimiter, trio.CapacityLimiter]]
        self._limits = trio.lowlevel.RunVar("worker_process_limits")
        self.started = 0  # processes started so far, for the tests and the logs

    def _limiters(self) -> tuple[trio.CapacityLimiter, trio.CapacityLimiter]:
        """The calls' slots, and the threads that wait on the processes. Those threads have their
        own limiter: a call made from a worker thread holds a token of Trio's default one while
        it waits, and with every such token held, threads of the same limiter would never start."""
        try:
            return self._limits.get()
        except LookupError:
            # Twice the slots: a cancelled call's thread may outlive its slot for a moment.
            limiters = trio.CapacityLimiter(self.size), trio.CapacityLimiter(2 * self.size)
            self._limits.set(limiters)
            return limiters

    @property
    def busy(self) -> int:
        """Calls running now in this Trio run."""
        return int(self._limiters()[0].borrowed_tokens)

    def _take(self) -> _Worker | None:
        with self._idle_lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.discard()
            return None

    def _give_back(self, worker: _Worker) -> None:
        with self._idle_lock:
            if len(self._idle) < self.size:
                self._idle.append(worker)
                return
        worker.discard()

    def _start(self) -> _Worker:
        worker = _Worker()
        self.started += 1
        return worker

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process; ``fn``, its arguments and its result are pickled."""
        if under_virtual_clock():
            await trio.lowlevel.checkpoint()
            return fn(*args)
        slots, threads = self._limiters()
        async with slots:
            worker = self._take()
            if worker is None:
                worker = await trio.to_thread.run_sync(self._start, limiter=threads)
            try:
                ok, value = await trio.to_thread.run_sync(
                    worker.call, fn, args, abandon_on_cancel=True, limiter=threads
                )
            except BaseException:  # cancelled (or the thread failed): the process goes, whatever it does
                worker.kill()
                with trio.CancelScope(shield=True):  # a killed process is gone in moments: wait for it
                    await trio.to_thread.run_sync(worker.reap, limiter=threads)
                raise
            self._give_back(worker)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop the idle processes (at the node's exit; calls still running are killed by their tasks)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.discard()


async def _run_cancellable(
    pool: WorkerProcesses, handle: CancelHandle, fn: Callable[..., T], args: tuple[Any, ...]
) -> T:
    with handle.scope():
        return await pool.run(fn, *args)
    raise OrthancError(ErrorCode.CANCELED_JOB)  # the scope caught the cancellation: the thread stops here


def run_blocking(pool: WorkerProcesses, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker process, for code running in a worker thread; inline where no
    Trio run can host the call (outside of Trio, in its own thread, under a virtual clock).

    A thread of :func:`trio.to_thread.run_sync` hands the call to its task, and is cancelled
    with it; a thread of :func:`~node.offload.offload_ahead` hands it to the Trio run that
    started the work, and :meth:`~node.offload.Pending.cancel` cancels it (the thread then
    gets Orthanc's error 37)."""
    handle = current_cancel_handle()
    if handle is not None:
        return trio.from_thread.run(_run_cancellable, pool, handle, fn, args, trio_token=handle.token)
    try:
        trio.from_thread.check_cancelled()
    except RuntimeError:  # not a thread of trio.to_thread.run_sync
        return fn(*args)
    return trio.from_thread.run(pool.run, fn, *args)


_pool: WorkerProcesses | None = None


def worker_processes() -> WorkerProcesses:
    """The node's pool, created on first use."""
    global _pool
    if _pool is None:
        _pool = WorkerProcesses()
    return _pool
