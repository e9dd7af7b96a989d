"""Group commit: calls that queue up while the writer thread is busy run there as one batch.

Under concurrent ingest much of an SQLite write is the transaction around it
(BEGIN, COMMIT, the thread hand-offs), not the rows themselves: one transaction
for every store waiting at that moment divides that overhead by the batch size.

Where the write lock is shared with other processes (members on one SQLite index), a
batch may first have to wait for it: the batch is then taken once the lock is held
(``hold``), so every store that arrived during the wait joins it. Taken before, the wait
would leave them to a batch of their own, and N members would commit ever smaller
batches one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Generic, Protocol, TypeVar

import outcome
import trio

Item = TypeVar("Item")
Result = TypeVar("Result")
T = TypeVar("T")


class Runner(Protocol):
    """Where batches run: a :class:`~node.storage.thread.DedicatedThread` (one batch at a time),
    or a backend's worker threads (as many batches at once as it has connections)."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T: ...


class _Entry(Generic[Item, Result]):
    __slots__ = ("done", "item", "result")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: outcome.Outcome[Result] | None = None
        self.done = trio.Event()


class Batcher(Generic[Item, Result]):
    """Runs ``run_batch(items)`` on ``thread`` for the items submitted meanwhile.

    A submit finding no batch queued on the thread queues one (a *drain*); when the
    drain starts it enters ``hold()`` (if given: what the batch needs held while it runs,
    such as a transaction holding a write lock), then takes every item pending at that
    moment. So each item is queued on the thread no later than its own submit, in order
    with any other work there (closing the index included), and ``run_batch`` returns one
    outcome per item, so a failure reaches its own caller only. A failure of ``hold``
    itself (entering or leaving it: a commit) reaches every item of the batch.
    """

    def __init__(
        self,
        thread: Runner,
        run_batch: Callable[[list[Item]], list[outcome.Outcome[Result]]],
        hold: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self._thread = thread
        self._run_batch = run_batch
        self._hold = hold
        self._lock = threading.Lock()  # _pending and _drain_queued are shared with the thread
        self._pending: list[_Entry[Item, Result]] = []
        self._drain_queued = False

    async def submit(self, item: Item) -> Result:
        """Run ``item`` in the next batch and return its result.

        Not cancellable, like :meth:`DedicatedThread.run`: a queued write always
        completes, so the caller never leaves behind a write it thinks undone.
        """
        entry: _Entry[Item, Result] = _Entry(item)
        with self._lock:
            self._pending.append(entry)
            queue_drain = not self._drain_queued
            self._drain_queued = True
        with trio.CancelScope(shield=True):
            if queue_drain:
                # The entries of this drain, possibly not including ours if an earlier drain took it.
                for taken, result in await self._thread.run(self._drain):
                    taken.result = result
                    taken.done.set()
            if not entry.done.is_set():  # an earlier drain took it
                await entry.done.wait()
        assert entry.result is not None
        return entry.result.unwrap()

    def _take(self) -> list[_Entry[Item, Result]]:
        with self._lock:
            batch, self._pending = self._pending, []
            self._drain_queued = False
        return batch

    def _drain(self) -> list[tuple[_Entry[Item, Result], outcome.Outcome[Result]]]:
        """On the thread: run every pending item as one batch, once ``hold`` is entered."""
        batch: list[_Entry[Item, Result]] | None = None
        try:
            with self._hold():
                batch = self._take()
                results = self._run_batch([entry.item for entry in batch])
            return list(zip(batch, results, strict=True))
        except Exception as exc:  # hold or run_batch itself failed: every caller of the batch gets the error
            return [(entry, outcome.Error(exc)) for entry in (self._take() if batch is None else batch)]
