"""The pending queue: highest priority first, submission order among equals."""

from __future__ import annotations

import heapq
import itertools

import trio

from .record import JobRecord


class PendingQueue:
    """A binary heap on (-priority, ticket); removal is lazy (the record forgets its ticket)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, JobRecord]] = []
        self._tickets = itertools.count()
        self._waiting_workers = trio.lowlevel.ParkingLot()

    def push(self, record: JobRecord) -> None:
        ticket = next(self._tickets)
        record.ticket = ticket
        heapq.heappush(self._heap, (-record.priority, ticket, record))
        self._waiting_workers.unpark()

    @staticmethod
    def discard(record: JobRecord) -> None:
        record.ticket = None

    def in_order(self) -> list[JobRecord]:
        """The queued jobs in the order the workers will take them (the heap sorted, stale entries left out)."""
        return [
            record for _, ticket, record in sorted(self._heap, key=lambda entry: entry[:2]) if record.ticket == ticket
        ]

    def _pop_live(self) -> JobRecord | None:
        while self._heap:
            _, ticket, record = heapq.heappop(self._heap)
            if record.ticket == ticket:
                record.ticket = None
                return record
        return None

    async def get(self) -> JobRecord:
        """The next job to run, waiting for one if none is pending (always a checkpoint)."""
        await trio.lowlevel.checkpoint()
        while True:
            record = self._pop_live()
            if record is not None:
                return record
            await self._waiting_workers.park()
