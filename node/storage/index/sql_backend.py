"""The :class:`Index` methods every SQL backend answers the same way, with the shared queries.

A backend says how one query runs (:meth:`SqlBackend._read`, :meth:`SqlBackend._lookup`,
:meth:`SqlBackend._autocommit`, :meth:`SqlBackend._write`: on which thread and connection, in
which transaction) and implements
what truly differs: opening and closing, stores (each batches them its own way), and the last sequence number given.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from ...dicom.ids import Level
from . import queries
from .base import (
    Attachment,
    Change,
    ClaimedJob,
    DeleteResult,
    DescendantSummary,
    Index,
    JobLease,
    JobRow,
    ResourceRecord,
)
from .job_leases import STATEMENTS

T = TypeVar("T")


class SqlBackend(Index):
    _jobs = STATEMENTS  # the cluster jobs' statements, rendered in the backend's dialect when run

    @abc.abstractmethod
    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)``: reads only, seeing every write that returned before."""

    async def _lookup(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)``: a read of a few rows by key, which the backend may run where it
        costs least (SQLite: on the event loop); where reads run, by default."""
        return await self._read(fn, *args)

    async def _lookup_one(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`_lookup` of ``fn`` that reads with a single statement, its own snapshot: the
        backend may leave out the transaction around it. Where lookups run, by default."""
        return await self._lookup(fn, *args)

    async def _autocommit(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)``: writes of a single statement each, which commits alone. Where
        reads run, unless the backend writes elsewhere."""
        return await self._read(fn, *args)

    @abc.abstractmethod
    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)`` in a transaction of its own."""

    async def _write_unflushed(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)`` in a transaction of its own that may reach the disk after it returns:
        a crash of the machine (not of a process) may undo it, never tear it. For a record that is
        redone when lost: a cluster job's claim, progress, end and lease (a job whose row goes
        back to an earlier state runs again from there, and its steps may run twice). A write of
        a few rows by key: SQLite may run it on the event loop. Durable, as :meth:`_write`, by
        default."""
        return await self._write(fn, *args)

    async def series_status(self, public_id: str) -> str:
        return await self._lookup(queries.status_of_series, public_id)

    async def set_main_tags(
        self, instance: str, tags: dict[Level, dict[str, str]], identifiers: dict[Level, dict[str, str]]
    ) -> None:
        await self._write(queries.set_main_tags, instance, tags, identifiers)

    async def delete(self, public_id: str, level: Level) -> DeleteResult | None:
        return await self._write(queries.delete, public_id, level)

    # Browsing
    async def resource(self, public_id: str, level: Level | None = None) -> ResourceRecord | None:
        return await self._lookup(queries.resource, public_id, level)

    async def resources(self, public_ids: list[str]) -> list[ResourceRecord]:
        return await self._read(queries.resources, public_ids)

    async def list_ids(self, level: Level, since: int = 0, limit: int | None = None) -> list[str]:
        return await self._read(queries.list_ids, level, since, limit)

    async def descendants(self, public_id: str, level: Level, *, of: Level | None = None) -> list[str]:
        return await self._lookup_one(queries.descendants, public_id, level, of)

    async def level_of(self, public_id: str) -> Level | None:
        return await self._lookup_one(queries.level_of, public_id)

    async def all_tags_of_level(self, level: Level) -> list[tuple[str, dict[str, str]]]:
        return await self._read(queries.all_tags_of_level, level)

    async def lookup_identifier(self, value: str) -> list[tuple[str, Level]]:
        return await self._read(queries.lookup_identifier, value)

    async def lookup_identifier_at(self, level: Level, tag: str, value: str) -> list[str]:
        return await self._read(queries.lookup_identifier_at, level, tag, value)

    async def descendant_summaries(self, public_ids: Sequence[str], level: Level) -> dict[str, DescendantSummary]:
        return await self._read(queries.descendant_summaries, public_ids, level)

    # Attachments, metadata, protection
    async def attachments(self, public_id: str) -> dict[int, Attachment]:
        return await self._lookup_one(queries.attachments, public_id)

    async def dicom_attachments(self, public_ids: Sequence[str]) -> dict[str, Attachment]:
        if not public_ids:
            return {}
        if len(public_ids) <= queries.SUMMARY_CHUNK:  # one statement
            return await self._lookup_one(queries.dicom_attachments, public_ids)
        return await self._lookup(queries.dicom_attachments, public_ids)

    async def delete_attachment(self, public_id: str, content_type: int) -> str | None:
        return await self._write(queries.delete_attachment, public_id, content_type)

    async def set_attachment(self, public_id: str, attachment: Attachment) -> str | None:
        return await self._write(queries.set_attachment, public_id, attachment)

    async def known_attachments(self, uuids: Collection[str]) -> set[str]:
        return await self._read(queries.known_attachments, uuids) if uuids else set()

    async def set_metadata(self, public_id: str, name: str, value: str) -> None:
        await self._autocommit(queries.set_metadata, public_id, name, value)

    async def delete_metadata(self, public_id: str, name: str) -> bool:
        return await self._autocommit(queries.delete_metadata, public_id, name)

    async def is_protected(self, public_id: str) -> bool:
        return await self._lookup_one(queries.is_protected, public_id)

    async def set_protected(self, public_id: str, protected: bool) -> None:
        await self._autocommit(queries.set_protected, public_id, protected)

    # Changes
    async def log_change(self, change_type: str, public_id: str, level: Level, date: str) -> None:
        await self._autocommit(queries.log_change, change_type, public_id, level, date)

    async def changes(self, since: int, limit: int) -> tuple[list[Change], bool]:
        return await self._read(queries.changes, since, limit)

    async def last_change(self) -> Change | None:
        return await self._read(queries.last_change)

    async def clear_changes(self) -> None:
        await self._autocommit(queries.clear_changes)

    # Statistics
    async def statistics(self) -> dict[str, int]:
        return await self._read(queries.statistics)

    async def resource_statistics(self, public_id: str, level: Level) -> dict[str, int]:
        return await self._read(queries.resource_statistics, public_id, level)

    # Global properties
    async def get_property(self, name: str) -> str | None:
        return await self._lookup_one(queries.get_property, name)

    async def set_property(self, name: str, value: str) -> None:
        await self._autocommit(queries.set_property, name, value)

    # Saved jobs
    async def saved_jobs(self) -> dict[str, str]:
        return await self._read(queries.saved_jobs)

    async def save_jobs(self, changed: dict[str, str], removed: Collection[str], *, clear: bool = False) -> None:
        await self._write(queries.save_jobs, changed, removed, clear)

    # Cluster jobs: the statements of job_leases, each write in a transaction of its own (a
    # claim reads, then writes).
    async def insert_job(
        self, job_id: str, data: str, *, state: str, priority: int, owner: str | None, ttl_ms: int
    ) -> None:
        params = {"id": job_id, "data": data, "state": state, "priority": priority, "owner": owner, "ttl": ttl_ms}
        await self._write(queries.changed_rows, self._jobs.insert, params)

    async def claim_job(self, member: str, ttl_ms: int) -> ClaimedJob | None:
        rows = await self._write_unflushed(queries.returned_rows, self._jobs.claim, {"me": member, "ttl": ttl_ms})
        return ClaimedJob(*rows[0]) if rows else None

    async def renew_job_leases(self, member: str, ttl_ms: int) -> list[JobLease]:
        def run(sql: queries.Sql) -> list[JobLease]:
            sql.run(self._jobs.heartbeat, {"me": member})
            return [JobLease(*row) for row in sql.rows(self._jobs.renew, {"me": member, "ttl": ttl_ms})]

        return await self._write_unflushed(run)

    async def reap_job_leases(self, member_max_age_ms: int) -> int:
        def run(sql: queries.Sql) -> int:
            sql.run(self._jobs.forget_members, {"max_age": member_max_age_ms})
            return sql.run(self._jobs.reap)

        return await self._write_unflushed(run)

    async def release_member_jobs(self, member: str) -> None:
        await self._write_unflushed(queries.changed_rows, self._jobs.release_member, {"me": member})

    async def release_owned_job(self, job_id: str, member: str, generation: int) -> bool:
        params = {"id": job_id, "me": member, "generation": generation}
        return bool(await self._write_unflushed(queries.changed_rows, self._jobs.release_owned, params))

    async def write_owned_job(
        self,
        job_id: str,
        member: str,
        generation: int,
        data: str,
        *,
        state: str,
        owner_after: str | None,
        ttl_ms: int,
        requeue: bool = False,
    ) -> bool:
        params = {
            "id": job_id, "me": member, "generation": generation, "data": data, "state": state,
            "owner_after": owner_after, "ttl": ttl_ms, "requeue": int(requeue),
        }  # fmt: skip
        return bool(await self._write_unflushed(queries.changed_rows, self._jobs.fenced_write, params))

    async def replace_job(self, row: JobRow, data: str, *, state: str, priority: int, requeue: bool = False) -> bool:
        params = {
            "id": row.id, "data": data, "state": state, "priority": priority, "requeue": int(requeue),
            "expected_state": row.state, "generation": row.generation, "expected_owner": row.owner,
        }  # fmt: skip
        return bool(await self._write(queries.changed_rows, self._jobs.compare_and_set, params))

    async def set_job_priority(self, job_id: str, priority: int) -> bool:
        params = {"id": job_id, "priority": priority}
        return bool(await self._write(queries.changed_rows, self._jobs.set_priority, params))

    async def set_job_command(self, job_id: str, command: str, *, tell_owner: str | None = None) -> str | None:
        def run(sql: queries.Sql) -> str | None:
            rows = sql.rows(self._jobs.set_command, {"id": job_id, "command": command})
            owner: str | None = rows[0][0] if rows else None
            if owner is not None and tell_owner is not None:
                self._tell(sql, owner, tell_owner)
            return owner

        return await self._write(run)

    def _tell(self, sql: queries.Sql, target: str, text: str) -> None:
        """Send ``text`` to ``target`` when the transaction of ``sql`` commits, where the
        database carries messages (see :meth:`Index.notifications`); nothing otherwise."""

    async def job_commands(self, member: str) -> list[tuple[str, str]]:
        rows = await self._read(queries.returned_rows, self._jobs.commands_of, {"me": member})
        return [(job_id, command) for job_id, command in rows]

    async def job_row(self, job_id: str) -> JobRow | None:
        rows = await self._lookup_one(queries.returned_rows, self._jobs.row, {"id": job_id})
        return JobRow(*rows[0]) if rows else None

    async def job_rows(self) -> list[JobRow]:
        rows = await self._read(queries.returned_rows, self._jobs.rows, {})
        return [JobRow(*row) for row in rows]

    async def job_ids(self, state: str | None = None) -> list[str]:
        if state is None:
            rows = await self._read(queries.returned_rows, self._jobs.ids, {})
        else:
            rows = await self._read(queries.returned_rows, self._jobs.ids_in_state, {"state": state})
        return [str(row[0]) for row in rows]

    async def job_counts(self) -> dict[str, int]:
        rows = await self._read(queries.returned_rows, self._jobs.counts, {})
        return {state: int(count) for state, count in rows}

    async def trim_job_history(self, keep: int) -> list[str]:
        rows = await self._write(queries.returned_rows, self._jobs.trim_history, {"keep": keep})
        return [data for _, data in rows]

    async def delete_ended_job(self, job_id: str) -> str | None:
        rows = await self._write(queries.returned_rows, self._jobs.delete_ended, {"id": job_id})
        return rows[0][0] if rows else None

    async def register_member(self, member: str, pid: int) -> None:
        await self._write(queries.changed_rows, self._jobs.register_member, {"me": member, "pid": pid})

    async def unregister_member(self, member: str) -> None:
        await self._write(queries.changed_rows, self._jobs.unregister_member, {"me": member})

    async def live_members(self, max_age_ms: int) -> list[str]:
        rows = await self._read(queries.returned_rows, self._jobs.live_members, {"max_age": max_age_ms})
        return [member for (member,) in rows]
