"""SaveJobs: keeps the saved jobs in the index in step with the registry, for the next start.

Jobs are saved one row each and only when they changed, so a save costs what
changed, not the size of the registry: the rows always equal the registry as
of the last save. Saves happen within 100 ms after a submission, an end or a
user action (bursts coalesce into one write), every 10 s for the progress of
running jobs, and once more, shielded, when the node stops.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import aclosing
from typing import Any

import trio
from trio_util import RepeatedEvent, periodic

from ..metrics import Metrics
from ..storage.index import Index
from .record import JobRecord

log = logging.getLogger(__name__)

FLUSH_DELAY = 0.05  # one write for a burst (a short job submitted meanwhile is written once, ended): inside 100 ms
SAVE_PERIOD = 10.0
SAVE_BATCH = 32  # jobs written by one write of the index


class JobsStore:
    def __init__(self, index: Index, records: Callable[[], Mapping[str, JobRecord]], metrics: Metrics) -> None:
        self._index = index
        self._records = records
        self._metrics = metrics
        self._changed: set[str] = set()
        self._removed: set[str] = set()
        self._wanted = RepeatedEvent()  # a save is due: an urgent change, or the period

    def changed(self, job_id: str) -> None:
        """The job changed; the next save writes it."""
        self._removed.discard(job_id)
        self._changed.add(job_id)

    def changed_urgently(self, job_id: str) -> None:
        """The job was submitted, ended, paused or resumed: save it within 100 ms."""
        self.changed(job_id)
        self._wanted.set()

    def removed(self, job_id: str) -> None:
        self._changed.discard(job_id)
        self._removed.add(job_id)
        self._wanted.set()

    async def load(self) -> list[dict[str, Any]]:
        """The saved forms; unreadable rows are skipped with a warning."""
        forms = []
        for job_id, text in (await self._index.saved_jobs()).items():
            try:
                form = json.loads(text)
            except json.JSONDecodeError as error:
                log.warning("ignoring the unreadable saved job %s: %s", job_id, error)
                continue
            if isinstance(form, dict):
                forms.append(form)
            else:
                log.warning("ignoring the saved job %s: not a JSON object", job_id)
        return forms

    async def forget_all(self) -> None:
        await self._index.save_jobs({}, (), clear=True)

    async def run(self) -> None:
        """Save on demand and periodically until cancelled, then save a last time.

        A save asked while one is under way is not lost: the events iterator comes round
        again for it (changes it already wrote make that round write nothing).
        """
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._ask_periodically)
                async for _ in self._wanted.events():
                    await trio.sleep(FLUSH_DELAY)
                    await self.save()
        finally:
            with trio.CancelScope(shield=True):
                await self.save()

    async def _ask_periodically(self) -> None:
        """The progress of running jobs, saved every SAVE_PERIOD."""
        async with aclosing(periodic(SAVE_PERIOD)) as ticks:
            async for _ in ticks:
                self._wanted.set()

    async def save(self) -> None:
        """What changed since the last save, in writes of SAVE_BATCH jobs at most: the index may
        run a write on the event loop (SQLite does), which a burst of submissions must not hold
        for long."""
        changed, removed = list(self._changed), self._removed
        self._changed, self._removed = set(), set()
        records = self._records()
        for start in range(0, max(len(changed), 1), SAVE_BATCH):
            rows: dict[str, str] = {}
            for job_id in changed[start : start + SAVE_BATCH]:
                record = records.get(job_id)
                form = record.saved_form() if record is not None else None
                if form is not None:
                    rows[job_id] = json.dumps(form)
            gone = removed if start == 0 else set()
            if rows or gone:
                await self._index.save_jobs(rows, gone)
                self._metrics.jobs_saved()
