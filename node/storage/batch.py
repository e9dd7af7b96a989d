"""Group commit: calls that queue up while the writer thread is busy run there as one batch.

Under concurrent ingest most of an SQLite write is the transaction around it
(BEGIN, COMMIT and the thread hand-offs), not the rows themselves; one transaction
for every store waiting at that moment cuts that overhead by the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import outcome
import trio

from .thread import DedicatedThread

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Entry(Generic[Item, Result]):
    __slots__ = ("item", "result", "turn")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: outcome.Outcome[Result] | None = None
        self.turn = trio.Event()  # set with a result, or to ask this caller to lead the next batch


class Batcher(Generic[Item, Result]):
    """Runs ``run_batch(items)`` on ``thread`` for the items submitted meanwhile.

    One caller leads at a time: it takes every waiting item to the thread and hands
    the outcomes back; the first caller still waiting then leads the next batch.
    ``run_batch`` returns one outcome per item, so a failure reaches its own caller.
    All bookkeeping runs on the Trio thread, so plain lists are safe.
    """

    def __init__(
        self, thread: DedicatedThread, run_batch: Callable[[list[Item]], list[outcome.Outcome[Result]]]
    ) -> None:
        self._thread = thread
        self._run_batch = run_batch
        self._waiting: list[_Entry[Item, Result]] = []
        self._leading = False

    async def submit(self, item: Item) -> Result:
        """Run ``item`` in the next batch and return its result.

        Not cancellable, like :meth:`DedicatedThread.run`: a queued write always
        completes, so the caller never leaves behind a write it thinks undone.
        """
        entry: _Entry[Item, Result] = _Entry(item)
        self._waiting.append(entry)
        with trio.CancelScope(shield=True):
            if self._leading:
                await entry.turn.wait()
            if entry.result is None:
                await self._lead()
        assert entry.result is not None
        return entry.result.unwrap()

    async def _lead(self) -> None:
        self._leading = True
        batch, self._waiting = self._waiting, []
        try:
            results = await self._thread.run(self._run_batch, [entry.item for entry in batch])
        except Exception as exc:  # run_batch itself failed: every caller of the batch gets the error
            results = [outcome.Error(exc) for _ in batch]
        for entry, result in zip(batch, results, strict=True):
            entry.result = result
            entry.turn.set()
        if self._waiting:
            self._waiting[0].turn.set()
        else:
            self._leading = False
