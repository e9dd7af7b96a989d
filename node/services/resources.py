"""Resources as Orthanc shows them, and their deletion and content."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import trio
from pydicom.dataset import Dataset

from ..dicom.ids import Level
from ..dicom.json_view import TagFormat, tags_json_by_key
from ..dicom.parse import read_dataset
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Index, ResourceRecord
from ..storage.index.base import COMPRESSION_ZLIB, Attachment
from .dicom_cache import DicomCache
from .stability import StabilityTracker

T = TypeVar("T")

# Files up to this size are read without leaving the event loop (see read_attachment).
INLINE_READ_BYTES = 1024 * 1024


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class Resources:
    def __init__(self, index: Index, files: FileStore, stability: StabilityTracker) -> None:
        self.index = index
        self.files = files
        self.stability = stability
        self.dicom_cache = DicomCache(files.metrics)

    async def get(self, public_id: str, level: Level | None = None) -> ResourceRecord:
        record = await self.index.resource(public_id, level)
        if record is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        return record

    async def exists(self, public_id: str, level: Level) -> bool:
        return await self.index.level_of(public_id) == level

    async def to_json(self, record: ResourceRecord, fmt: TagFormat = TagFormat.SIMPLIFY) -> dict[str, Any]:
        level = record.level
        answer: dict[str, Any] = {
            "ID": record.public_id,
            "Type": level.title,
            "MainDicomTags": tags_json_by_key(record.main_tags, fmt),
        }
        if level == Level.STUDY:
            answer["PatientMainDicomTags"] = tags_json_by_key(record.patient_tags, fmt)
        if level != Level.PATIENT:
            answer[level.parent_key] = record.parent
        if level != Level.INSTANCE:
            answer[level.children_key] = record.children
            answer["IsStable"] = self.stability.is_stable(record.public_id)
            answer["LastUpdate"] = record.metadata.get("LastUpdate", "")
        if level == Level.SERIES:
            answer["ExpectedNumberOfInstances"] = _int_or_none(record.metadata.get("ExpectedNumberOfInstances"))
            answer["Status"] = await self.index.series_status(record.public_id)
        if level == Level.INSTANCE:
            attachment = await self.index.dicom_attachment(record.public_id)
            answer["FileSize"] = attachment.uncompressed_size if attachment else 0
            answer["FileUuid"] = attachment.uuid if attachment else ""
            answer["IndexInSeries"] = _int_or_none(record.metadata.get("IndexInSeries"))
        for key in ("AnonymizedFrom", "ModifiedFrom"):
            if key in record.metadata:
                answer[key] = record.metadata[key]
        return answer

    async def many_json(self, public_ids: list[str], fmt: TagFormat = TagFormat.SIMPLIFY) -> list[dict[str, Any]]:
        return [await self.to_json(r, fmt) for r in await self.index.resources(public_ids)]

    async def delete(self, public_id: str, level: Level) -> dict[str, Any] | None:
        """Delete a resource and its descendants; None when it does not exist."""
        result = await self.index.delete(public_id, level)
        if result is None:
            return None
        self.stability.forget(public_id)
        self.dicom_cache.forget_files(result.removed_files)
        with trio.CancelScope(shield=True):
            await offload(self.files.remove_many, result.removed_files)
        ancestor = None
        if result.remaining_ancestor is not None:
            ancestor_id, ancestor_level = result.remaining_ancestor
            ancestor = {
                "ID": ancestor_id,
                "Path": f"/{ancestor_level.plural}/{ancestor_id}",
                "Type": ancestor_level.title,
            }
        return {"RemainingAncestor": ancestor}

    async def read_attachment(self, attachment: Attachment) -> bytes:
        """The attachment's bytes. A small uncompressed file is read on the event loop: from the
        page cache that takes less time than the hop to a worker thread and back."""
        compressed = attachment.compression == COMPRESSION_ZLIB
        try:
            if not compressed and attachment.compressed_size <= INLINE_READ_BYTES:
                return self.files.read(attachment.uuid)
            return await offload(self.files.read, attachment.uuid, compressed)
        except FileNotFoundError as exc:
            raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}") from exc

    def open_attachment(self, attachment: Attachment) -> int | None:
        """A descriptor of an uncompressed attachment's file, for the caller to send and close;
        None when the file is compressed (it must be read and inflated). Opened on the event
        loop, as a small file is read there (see :meth:`read_attachment`)."""
        if attachment.compression == COMPRESSION_ZLIB:
            return None
        try:
            return self.files.open_raw(attachment.uuid)
        except FileNotFoundError as exc:
            raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}") from exc

    async def instance_attachment(self, public_id: str) -> Attachment:
        """The attachment of an instance's DICOM file; Orthanc's error 17 for anything but an instance."""
        attachment = await self.index.dicom_attachment(public_id)
        if attachment is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        return attachment

    async def instance_file(self, public_id: str) -> bytes:
        return await self.read_attachment(await self.instance_attachment(public_id))

    async def instance_dataset(self, public_id: str) -> Dataset:
        """The instance's file freshly parsed: the caller's own copy, which it may change."""
        data = await self.instance_file(public_id)
        return await offload(read_dataset, data)

    async def read_instance(self, public_id: str, use: Callable[..., T], *args: Any) -> T:
        """``use(dataset, *args)`` run in a worker thread on the instance's parsed file, which
        comes from the cache of parsed files when it is there; ``use`` must not change it."""
        return await self.read_parsed(public_id, await self.instance_attachment(public_id), use, *args)

    async def read_parsed(self, public_id: str, attachment: Attachment, use: Callable[..., T], *args: Any) -> T:
        """As :meth:`read_instance`, for a caller that looked the instance's attachment up itself."""
        load = partial(self.read_attachment, attachment)
        return await self.dicom_cache.read(public_id, attachment.uuid, load, use, *args)
