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
from typing import Any

import trio

from ..metrics import Metrics
from ..storage.index import Index
from .record import JobRecord

log = logging.getLogger(__name__)

FLUSH_DELAY = 0.02  # gathers a burst of submissions into one write, well inside the 100 ms promise
SAVE_PERIOD = 10.0


class JobsStore:
    def __init__(self, index: Index, records: Callable[[], Mapping[str, JobRecord]], metrics: Metrics) -> None:
        self._index = index
        self._records = records
        self._metrics = metrics
        self._changed: set[str] = set()
        self._removed: set[str] = set()
        self._urgent = trio.Event()

    def changed(self, job_id: str) -> None:
        """The job changed; the next save writes it."""
        self._removed.discard(job_id)
        self._changed.add(job_id)

    def changed_urgently(self, job_id: str) -> None:
        """The job was submitted, ended, paused or resumed: save it within 100 ms."""
        self.changed(job_id)
        self._urgent.set()

    def removed(self, job_id: str) -> None:
        self._changed.discard(job_id)
        self._removed.add(job_id)
        self._urgent.set()

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
        """Save on demand and periodically until cancelled, then save a last time."""
        try:
            next_save = trio.current_time() + SAVE_PERIOD
            while True:
                with trio.move_on_at(next_save):
                    await self._urgent.wait()
                    await trio.sleep(FLUSH_DELAY)
                if trio.current_time() >= next_save:
                    next_save = trio.current_time() + SAVE_PERIOD
                await self.save()
        finally:
            with trio.CancelScope(shield=True):
                await self.save()

    async def save(self) -> None:
        self._urgent = trio.Event()
        changed, removed = self._changed, self._removed
        self._changed, self._removed = set(), set()
        records = self._records()
        rows: dict[str, str] = {}
        for job_id in changed:
            record = records.get(job_id)
            form = record.saved_form() if record is not None else None
            if form is not None:
                rows[job_id] = json.dumps(form)
        if rows or removed:
            await self._index.save_jobs(rows, removed)
            self._metrics.jobs_saved()
