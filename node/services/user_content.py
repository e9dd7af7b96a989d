"""Metadata and attachments that clients write on a resource (/metadata, /attachments).

Each write records its change (`UpdatedMetadata`, `UpdatedAttachment`) as Orthanc does.
An attachment is written to the file store before the index points at it, and a file it
replaces is removed only once the index no longer does; hashing and file access run in
worker threads.
"""

from __future__ import annotations

import hashlib

import trio

from ..clock import orthanc_date
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Attachment, Index, ResourceRecord
from ..storage.index.base import ATTACHMENT_DICOM, COMPRESSION_NONE, COMPRESSION_ZLIB
from .resources import Resources
from .revisions import ETag, WriteCondition, value_md5

# The index's records are what this service hands to its callers (the routes never import storage).
__all__ = ["Attachment", "ResourceRecord", "UserContent", "is_compressed", "is_dicom"]


def is_dicom(attachment: Attachment) -> bool:
    """Whether the attachment is the instance's DICOM file."""
    return attachment.content_type == ATTACHMENT_DICOM


def is_compressed(attachment: Attachment) -> bool:
    """Whether the file is stored zlib-compressed (StorageCompression was on when it was written)."""
    return attachment.compression == COMPRESSION_ZLIB


class UserContent:
    """Stateless over the index and the file store, so a route builds one per call."""

    def __init__(self, index: Index, files: FileStore, resources: Resources, *, store_md5: bool) -> None:
        self._index = index
        self._files = files
        self._resources = resources
        self._store_md5 = store_md5

    async def _changed(self, change_type: str, record: ResourceRecord) -> None:
        await self._index.log_change(change_type, record.public_id, record.level, orthanc_date())

    async def set_metadata(self, record: ResourceRecord, key: str, value: str, condition: WriteCondition) -> ETag:
        """Write a metadata if ``condition`` allows it (error 43 otherwise); its new ETag."""
        current = record.metadata.get(key)
        revision = condition.check(None if current is None else value_md5(current))
        await self._index.set_metadata(record.public_id, key, value)
        await self._changed("UpdatedMetadata", record)
        return ETag(revision, value_md5(value))

    async def delete_metadata(self, record: ResourceRecord, key: str, condition: WriteCondition) -> None:
        """Error 17 when the resource has no such metadata, 43 when ``condition`` does not allow it."""
        current = record.metadata.get(key)
        if current is not None:
            condition.check(value_md5(current), deleting=True)
        if not await self._index.delete_metadata(record.public_id, key):
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        await self._changed("UpdatedMetadata", record)

    async def attachments(self, record: ResourceRecord) -> dict[int, Attachment]:
        return await self._index.attachments(record.public_id)

    async def attachment(self, record: ResourceRecord, number: int) -> Attachment:
        """One attachment of the resource, or error 17."""
        attachment = (await self._index.attachments(record.public_id)).get(number)
        if attachment is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        return attachment

    def _write(self, number: int, data: bytes, compress: bool | None = None) -> Attachment:
        """Store the file and describe it (blocking: run in a thread); ``compress`` overrides StorageCompression."""
        compressed = self._files.compress if compress is None else compress
        if compress is None:
            file_uuid, stored_size = self._files.write(data)
        else:
            file_uuid, stored_size = self._files.write(data, compress=compress)
        try:
            md5 = hashlib.md5(data).hexdigest() if self._store_md5 else ""
            compressed_md5 = self._files.stored_md5(file_uuid) if compressed and md5 else md5
        except BaseException:  # nothing points at the file yet
            self._files.remove(file_uuid)
            raise
        return Attachment(
            content_type=number,
            uuid=file_uuid,
            uncompressed_size=len(data),
            compressed_size=stored_size,
            uncompressed_md5=md5,
            compressed_md5=compressed_md5,
            compression=COMPRESSION_ZLIB if compressed else COMPRESSION_NONE,
        )

    async def _replace(self, record: ResourceRecord, attachment: Attachment) -> None:
        """Point the index at a file just written; the file it replaces is then removed.

        Error 17 if the resource was deleted meanwhile, and then the new file is removed too.
        """
        try:
            replaced = await self._index.set_attachment(record.public_id, attachment)
        except BaseException:
            with trio.CancelScope(shield=True):  # the index does not point at it: nothing else will remove it
                await offload(self._files.remove, attachment.uuid)
            raise
        if replaced is not None:
            await offload(self._files.remove, replaced)

    async def set_compression(self, record: ResourceRecord, attachment: Attachment, compress: bool) -> None:
        """Store an attachment's file again, compressed or not (nothing to do if it already is)."""
        if is_compressed(attachment) == compress:
            return
        data = await self.data(attachment)
        await self._replace(record, await offload(self._write, attachment.content_type, data, compress))

    async def put_attachment(self, record: ResourceRecord, number: int, data: bytes, condition: WriteCondition) -> ETag:
        """Write an attachment if ``condition`` allows it (error 43 otherwise); its new ETag.

        Error 17 if the resource was deleted meanwhile, and then the new file is removed too.
        """
        current = (await self._index.attachments(record.public_id)).get(number)
        revision = condition.check(None if current is None else current.uncompressed_md5)
        attachment = await offload(self._write, number, data)
        await self._replace(record, attachment)
        await self._changed("UpdatedAttachment", record)
        return ETag(revision, attachment.uncompressed_md5)

    async def delete_attachment(self, record: ResourceRecord, number: int, condition: WriteCondition) -> None:
        """Error 17 when the resource has no such attachment, 43 when ``condition`` does not allow it."""
        current = (await self._index.attachments(record.public_id)).get(number)
        if current is not None:
            condition.check(current.uncompressed_md5, deleting=True)
        file_uuid = await self._index.delete_attachment(record.public_id, number)
        if file_uuid is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        await offload(self._files.remove, file_uuid)
        await self._changed("UpdatedAttachment", record)

    async def data(self, attachment: Attachment) -> bytes:
        """The content as it was given (uncompressed)."""
        return await self._resources.read_attachment(attachment)

    async def stored_bytes(self, attachment: Attachment) -> bytes:
        """The file as stored (compressed when StorageCompression was on)."""
        try:
            return await offload(self._files.read_raw, attachment.uuid)
        except FileNotFoundError as exc:
            raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}") from exc

    async def verify_md5(self, attachment: Attachment) -> bool:
        """Whether the stored file still has the recorded MD5s; error 6 when none was recorded."""
        if not attachment.uncompressed_md5:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "No MD5 was recorded for this attachment")
        stored = await self.stored_bytes(attachment)
        data = await self.data(attachment)

        def matches() -> bool:
            if attachment.compressed_md5 and hashlib.md5(stored).hexdigest() != attachment.compressed_md5:
                return False
            return hashlib.md5(data).hexdigest() == attachment.uncompressed_md5

        return await offload(matches)
