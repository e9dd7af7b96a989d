"""The C-STORE SCP: each received dataset checked against its command, written and indexed,
for the association's own task.

Datasets up to a CT slice or so are parsed on the event loop, where a thread hop would cost
more than the parse; where each file is written and flushed (a worker thread, or the index
thread once the rows are in) is ingest's choice (see Ingest.receive). Stopping is ordered by
:class:`StoreGate`: once closed, a C-STORE gets 0xA700, and the stores already inside run to
their end before associations are aborted.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from ..dicom.parse import ParsedInstance, describe_instance, describe_plain, read_dataset, sop_identity
from ..errors import ErrorCode, OrthancError
from ..services.ingest import Ingest, Origin, PreparedInstance
from .ul.assembly import Message
from .ul.dimse import (
    C_STORE_RQ,
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    SOP_CLASS_MISMATCH,
    SUCCESS,
    Command,
    file_meta,
)
from .ul.presentation import AcceptedContext

log = logging.getLogger(__name__)

# Datasets up to this size are parsed on the event loop: a usual file is described from its
# bytes in about 0.15 ms whatever its pixels, and its MD5 (some 0.8 ms for a 0.5 MB CT slice)
# lets other threads run meanwhile; a thread hop costs a CT store more than that saves.
INLINE_LIMIT = 1024 * 1024

# Ingest errors that mean "this dataset cannot be understood" rather than "it could not be stored".
_UNREADABLE = frozenset({ErrorCode.BAD_FILE_FORMAT, ErrorCode.INEXISTENT_TAG})


def dimse_status(error: OrthancError) -> int:
    """The C-STORE status of an ingest error."""
    return CANNOT_UNDERSTAND if error.code in _UNREADABLE else OUT_OF_RESOURCES


def dataset_prefix(context: AcceptedContext, command: Command) -> bytes:
    """What precedes a C-STORE dataset in the file we store: preamble and file meta."""
    if command.get("CommandField") != C_STORE_RQ:
        return b""
    sop_class = str(command.get("AffectedSOPClassUID", ""))
    sop_instance = str(command.get("AffectedSOPInstanceUID", ""))
    return file_meta(sop_class, sop_instance, context.transfer_syntax)


class _Refused(Exception):
    """The dataset is not stored: the C-STORE gets ``status``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"refused with status 0x{status:04x}")
        self.status = status


def _check_identity(command: Command, sop_class: str, sop_instance: str) -> None:
    if not sop_class or not sop_instance:
        raise _Refused(CANNOT_UNDERSTAND)
    if (sop_class, sop_instance) != (command.get("AffectedSOPClassUID"), command.get("AffectedSOPInstanceUID")):
        raise _Refused(SOP_CLASS_MISMATCH)


def _check_and_describe(command: Command, data: bytes) -> ParsedInstance:
    """Orthanc's check before storing: the dataset names the SOP class and instance of the command.

    The usual file is described straight from its bytes; any other, and any whose SOP class is
    missing, is read by pydicom first, so that a file refused is refused for the first reason.
    """
    parsed = describe_plain(data)
    if parsed is not None and parsed.sop_class_uid:
        _check_identity(command, parsed.sop_class_uid, parsed.dicom_ids[3])
        return parsed
    dataset = read_dataset(data)
    _check_identity(command, *sop_identity(dataset))
    return describe_instance(data, dataset)


class StoreGate:
    """Admits C-STOREs until closed; then knows when the last one admitted is done."""

    def __init__(self, ingest: Ingest, concurrent: int, *, inline_limit: int) -> None:
        self._ingest = ingest
        self._inline_limit = inline_limit
        self._limiter = trio.CapacityLimiter(max(1, concurrent))  # indexing at once (DicomThreadsCount)
        self._open = True
        self._inside = 0
        self._empty = trio.Event()

    async def store(self, data: bytes, command: Command, origin: Origin) -> int:
        """Check, write and index one received file; the status of the C-STORE-RSP."""
        if not self._open:
            return OUT_OF_RESOURCES
        self._inside += 1
        try:
            check = partial(_check_and_describe, command)
            prepared = await self._ingest.receive(data, origin, check, inline=len(data) <= self._inline_limit)
            return await self._commit(prepared)
        except _Refused as refused:
            return refused.status
        except OrthancError as error:
            log.warning("C-STORE from %s (%s) refused: %s", origin.remote_aet, origin.remote_ip, error)
            return dimse_status(error)
        finally:
            self._inside -= 1
            if not self._open and self._inside == 0:
                self._empty.set()

    async def _commit(self, prepared: PreparedInstance) -> int:
        try:
            try:
                self._limiter.acquire_nowait()  # no checkpoint when a slot is free
            except trio.WouldBlock:
                await self._limiter.acquire()
        except BaseException:  # cancelled before commit could own the file
            await self._ingest.abandon(prepared)
            raise
        try:
            await self._ingest.commit(prepared)
        finally:
            self._limiter.release()
        return SUCCESS

    def close(self) -> None:
        self._open = False
        if self._inside == 0:
            self._empty.set()

    async def wait_empty(self) -> None:
        await self._empty.wait()


async def handle_store(gate: StoreGate, message: Message, origin: Origin) -> int:
    """The status answering one C-STORE-RQ."""
    if message.oversized:
        log.warning("C-STORE from %s (%s) refused: dataset over the size limit", origin.remote_aet, origin.remote_ip)
        return OUT_OF_RESOURCES
    if message.dataset is None:
        return CANNOT_UNDERSTAND
    return await gate.store(message.dataset, message.command, origin)
