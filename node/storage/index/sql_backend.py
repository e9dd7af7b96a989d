"""The :class:`Index` methods every SQL backend answers the same way, with the shared queries.

A backend says how one query runs (:meth:`SqlBackend._read`, :meth:`SqlBackend._write`: on
which thread and connection, in which transaction) and implements what truly differs: opening
and closing, stores (each batches them its own way), and the last sequence number given.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from ...dicom.ids import Level
from . import queries
from .base import Attachment, Change, DeleteResult, DescendantSummary, Index, ResourceRecord

T = TypeVar("T")


class SqlBackend(Index):
    @abc.abstractmethod
    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)``: reads, or a single statement."""

    @abc.abstractmethod
    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)`` in a transaction of its own."""

    async def series_status(self, public_id: str) -> str:
        return await self._read(queries.status_of_series, public_id)

    async def set_main_tags(
        self, instance: str, tags: dict[Level, dict[str, str]], identifiers: dict[Level, dict[str, str]]
    ) -> None:
        await self._write(queries.set_main_tags, instance, tags, identifiers)

    async def delete(self, public_id: str, level: Level) -> DeleteResult | None:
        return await self._write(queries.delete, public_id, level)

    # Browsing
    async def resource(self, public_id: str, level: Level | None = None) -> ResourceRecord | None:
        return await self._read(queries.resource, public_id, level)

    async def resources(self, public_ids: list[str]) -> list[ResourceRecord]:
        return await self._read(queries.resources, public_ids)

    async def list_ids(self, level: Level, since: int = 0, limit: int | None = None) -> list[str]:
        return await self._read(queries.list_ids, level, since, limit)

    async def descendants(self, public_id: str, level: Level) -> list[str]:
        return await self._read(queries.descendants, public_id, level)

    async def level_of(self, public_id: str) -> Level | None:
        return await self._read(queries.level_of, public_id)

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
        return await self._read(queries.attachments, public_id)

    async def delete_attachment(self, public_id: str, content_type: int) -> str | None:
        return await self._write(queries.delete_attachment, public_id, content_type)

    async def set_attachment(self, public_id: str, attachment: Attachment) -> str | None:
        return await self._write(queries.set_attachment, public_id, attachment)

    async def known_attachments(self, uuids: Collection[str]) -> set[str]:
        return await self._read(queries.known_attachments, uuids) if uuids else set()

    async def set_metadata(self, public_id: str, name: str, value: str) -> None:
        await self._read(queries.set_metadata, public_id, name, value)

    async def delete_metadata(self, public_id: str, name: str) -> bool:
        return await self._read(queries.delete_metadata, public_id, name)

    async def is_protected(self, public_id: str) -> bool:
        return await self._read(queries.is_protected, public_id)

    async def set_protected(self, public_id: str, protected: bool) -> None:
        await self._read(queries.set_protected, public_id, protected)

    # Changes
    async def log_change(self, change_type: str, public_id: str, level: Level, date: str) -> None:
        await self._read(queries.log_change, change_type, public_id, level, date)

    async def changes(self, since: int, limit: int) -> tuple[list[Change], bool]:
        return await self._read(queries.changes, since, limit)

    async def last_change(self) -> Change | None:
        return await self._read(queries.last_change)

    async def clear_changes(self) -> None:
        await self._read(queries.clear_changes)

    # Statistics
    async def statistics(self) -> dict[str, int]:
        return await self._read(queries.statistics)

    async def resource_statistics(self, public_id: str, level: Level) -> dict[str, int]:
        return await self._read(queries.resource_statistics, public_id, level)

    # Global properties
    async def get_property(self, name: str) -> str | None:
        return await self._read(queries.get_property, name)

    async def set_property(self, name: str, value: str) -> None:
        await self._read(queries.set_property, name, value)

    # Saved jobs
    async def saved_jobs(self) -> dict[str, str]:
        return await self._read(queries.saved_jobs)

    async def save_jobs(self, changed: dict[str, str], removed: Collection[str], *, clear: bool = False) -> None:
        await self._write(queries.save_jobs, changed, removed, clear)
