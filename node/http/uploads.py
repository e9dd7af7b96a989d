"""Storing an uploaded body: one DICOM file, or a ZIP archive of them.

Shared by the fast path (a plain POST /instances) and the Quart route (forms and
gzip-encoded bodies), so an upload is stored the same way whichever serves it.
"""

from __future__ import annotations

import logging

from ..context import NodeContext
from ..dicom.parse import parse_instance
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..services.ingest import IngestResult, Origin
from ..units import MEGABYTE
from .inflate import ZipUpload
from .spool import SpooledBody

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK\x03\x04"
# A file up to this size is parsed on the event loop: a thread hop would cost more than the parse.
INLINE_PARSE_LIMIT = MEGABYTE // 4

Answer = dict[str, str]


async def store_instance(context: NodeContext, data: bytes, origin: Origin) -> IngestResult:
    """Write, parse and index one file; its write (and flushes) overlaps the parse."""
    prepared = await context.ingest.receive(data, origin, parse_instance, inline=len(data) <= INLINE_PARSE_LIMIT)
    return await context.ingest.commit(prepared)


async def _store_zip(context: NodeContext, content: SpooledBody, origin: Origin) -> list[Answer]:
    """Every DICOM member of a ZIP archive, one at a time; other members are skipped."""
    answers = []
    archive = await offload(ZipUpload, content, context.settings.http.maximum_request_size)
    try:
        for info in archive.members():
            data = await offload(archive.read, info)
            if not data:
                continue
            try:
                result = await store_instance(context, data, origin)
            except OrthancError as error:
                if error.code in (ErrorCode.BAD_FILE_FORMAT, ErrorCode.INEXISTENT_TAG):
                    log.warning("skipping ZIP entry %s: %s", info.filename, error)
                    continue
                raise
            answers.append(result.answer())
    finally:
        archive.close()
    return answers


async def store_content(context: NodeContext, content: SpooledBody, origin: Origin) -> list[Answer] | Answer:
    """A DICOM file, or a ZIP of them (whose answer is a list, even of one)."""
    if not content.on_disk:  # the frequent small upload: no thread hop before ingest's own
        data = content.read_all()
        if data[: len(ZIP_MAGIC)] == ZIP_MAGIC:
            return await _store_zip(context, content, origin)
        return (await store_instance(context, data, origin)).answer()
    if await offload(content.head, len(ZIP_MAGIC)) == ZIP_MAGIC:
        return await _store_zip(context, content, origin)
    data = await offload(content.read_all)
    return (await store_instance(context, data, origin)).answer()
