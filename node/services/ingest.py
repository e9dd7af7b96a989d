"""Store one received DICOM file: the single path used by REST uploads, the SCP and jobs."""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import trio
from pydicom.uid import ImplicitVRLittleEndian

from ..clock import orthanc_date
from ..dicom.ids import LEVELS, Level, OrthancIds
from ..dicom.parse import ParsedInstance, parse_instance
from ..dicom.tag_numbers import (
    ACCESSION_NUMBER,
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_INSTANCE_UID,
    SOP_INSTANCE_UID,
    STUDY_DATE,
    STUDY_DESCRIPTION,
    STUDY_INSTANCE_UID,
)
from ..dicom.tags import format_tag
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Attachment, Index, NewInstance
from ..storage.index.base import ATTACHMENT_DICOM, COMPRESSION_NONE, COMPRESSION_ZLIB
from ..storage.settings import StorageSettings
from ..storage.thread import StartedCall
from .stability import StabilityTracker
from .transcoding import AS_RECEIVED, TranscodingSettings, transcoded_or_original

log = logging.getLogger(__name__)

# Identifier tags indexed for /tools/lookup and C-MOVE, per level; a study also indexes its patient's.
_PATIENT_LOOKUP_TAGS = (PATIENT_ID, PATIENT_NAME, PATIENT_BIRTH_DATE)
_STUDY_LOOKUP_TAGS = (STUDY_INSTANCE_UID, ACCESSION_NUMBER, STUDY_DESCRIPTION, STUDY_DATE)
LOOKUP_TAGS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: tuple(map(format_tag, _PATIENT_LOOKUP_TAGS)),
    Level.STUDY: tuple(map(format_tag, _PATIENT_LOOKUP_TAGS + _STUDY_LOOKUP_TAGS)),
    Level.SERIES: (format_tag(SERIES_INSTANCE_UID),),
    Level.INSTANCE: (format_tag(SOP_INSTANCE_UID),),
}
_ALL_LOOKUP_TAGS = frozenset(tag for tags in LOOKUP_TAGS.values() for tag in tags)


# Instances whose IDs /tools/reconstruct reads from the index at a time.
RECONSTRUCT_BATCH = 500
# Datasets from this size on are written from the start (see Ingest.receive): their flush takes
# longer than their parse and MD5, which it then overlaps.
WRITE_AHEAD_BYTES = 64 * 1024

# Control characters of ASCII, deleted by str.translate.
_CONTROL_CHARACTERS = dict.fromkeys([*range(0x20), 0x7F])


def normalize_identifier(value: str) -> str:
    """Upper-case ASCII, no control characters, `%`/`_` as spaces, stripped."""
    if not value.isascii():  # NFKD is the identity on ASCII: skip it for the usual case
        value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return value.translate(_CONTROL_CHARACTERS).replace("%", " ").replace("_", " ").strip().upper()


def _identifiers(tags: dict[Level, dict[str, str]]) -> dict[Level, dict[str, str]]:
    """The normalized identifier tags of each level, taken from the main tags of any level."""
    present = {tag: value for level_tags in tags.values() for tag, value in level_tags.items()}
    normalized = {tag: normalize_identifier(present[tag]) for tag in _ALL_LOOKUP_TAGS if tag in present}
    return {level: {t: normalized[t] for t in LOOKUP_TAGS[level] if t in normalized} for level in LEVELS}


# The header of an element before its value: tag and length, plus (explicit VR) its VR and two
# reserved bytes, as Pixel Data's OB, OW and UN have.
_IMPLICIT_HEADER, _EXPLICIT_LONG_HEADER = 8, 12


def pixel_data_element_offset(parsed: ParsedInstance) -> int | None:
    """Where the Pixel Data element starts in the file (at its tag), as Orthanc records it; the
    parse tells where its value starts, after the header."""
    if parsed.pixel_data_offset is None:
        return None
    implicit = parsed.transfer_syntax == ImplicitVRLittleEndian
    return parsed.pixel_data_offset - (_IMPLICIT_HEADER if implicit else _EXPLICIT_LONG_HEADER)


@dataclass(frozen=True)
class Origin:
    """Who sent an instance: recorded as instance metadata."""

    kind: str = "RestApi"  # RestApi, DicomProtocol, Lua, Plugins
    remote_ip: str = ""
    remote_aet: str = ""
    called_aet: str | None = None
    http_username: str | None = None


@dataclass
class IngestResult:
    status: str  # Success, AlreadyStored
    ids: OrthancIds
    parsed: ParsedInstance

    def answer(self) -> dict[str, str]:
        patient, study, series, instance = self.ids
        return {
            "ID": instance,
            "ParentPatient": patient,
            "ParentSeries": series,
            "ParentStudy": study,
            "Path": f"/instances/{instance}",
            "Status": self.status,
        }


# What reacts to stored instances, as Orthanc's OnStoredInstance callbacks (Lua, plugins) do:
# the listeners in ``Ingest.listeners`` are awaited in order once an instance is indexed (or
# found already stored), in the task that stored it. A slow listener delays the answer to that
# store; an exception it raises fails the store, whose instance stays stored.
StoredListener = Callable[[IngestResult], Awaitable[None]]


@dataclass
class PreparedInstance:
    """A parsed instance whose file is written (or being written) but not indexed yet:
    :meth:`Ingest.commit` or :meth:`Ingest.abandon` it."""

    parsed: ParsedInstance
    new: NewInstance
    started: float = 0.0  # time.perf_counter() when preparing began, for the store duration metric
    # The write of its file when still under way, or deferred (see Ingest.receive): the index
    # commits once it ended.
    written: StartedCall[tuple[str, int]] | None = None


class Ingest:
    """Ingest in two steps: :meth:`prepare` (blocking, any thread) or :meth:`receive` (on Trio,
    the SCP's) writes the file and describes the instance, then :meth:`commit` on Trio indexes
    it. :meth:`store` does both for callers on Trio.

    With ``SyncStorageArea`` (the default) :meth:`prepare` returns once the file is on the
    disk and :meth:`commit` once the index entry is, so whatever a caller answers after
    ``commit`` survives a power cut. A failed write raises an :class:`OrthancError` (507 for a
    full disk) and leaves no file behind.
    """

    def __init__(
        self,
        settings: StorageSettings,
        index: Index,
        files: FileStore,
        stability: StabilityTracker,
        transcoding: TranscodingSettings = AS_RECEIVED,
    ) -> None:
        self._settings = settings
        self._defer_writes = index.takes_deferred_writes  # see receive
        self._transcoding = transcoding
        self._index = index
        self._files = files
        self._stability = stability
        self.listeners: list[StoredListener] = []  # the extension point described at StoredListener
        self._indexing = 0  # commits waiting for the index (see commit)

    def prepare(
        self, parsed: ParsedInstance, origin: Origin, metadata: Mapping[str, str] | None = None
    ) -> PreparedInstance:
        """Write the file of a parsed instance and describe it for the index (blocking, any thread).

        ``metadata`` is stored with the instance, besides what ingest records itself.
        """
        started = time.perf_counter()
        parsed = self._ingest_transcoded(parsed)
        file_uuid, stored_size = self._files.write(parsed.data)
        try:
            new = self._new_instance(parsed, origin, file_uuid, stored_size, self._digest(parsed.data))
            new.metadata.update(metadata or {})
            return PreparedInstance(parsed, new, started)
        except BaseException:
            self._files.remove(file_uuid)
            raise

    async def receive(
        self, data: bytes, origin: Origin, parse: Callable[[bytes], ParsedInstance], *, inline: bool
    ) -> PreparedInstance:
        """:meth:`prepare` for bytes just received, ``parse`` reading them on the event loop
        when ``inline`` (a small dataset, where a thread hop would cost more than the parse),
        else in a thread. The write may still be under way, or not begun, when this returns:
        :meth:`commit` writes the index rows meanwhile and commits them once the file is durable.

        A large dataset's file is written (and flushed) in a worker thread from the start, so
        that the write overlaps the parse; the parse then waits until the write flushes the
        file (only one thread runs Python at a time, so a parse started earlier would hold the
        write back). A small dataset is parsed at once and its write deferred: :meth:`commit`
        starts it in a worker if the index is busy with other stores (the write then overlaps
        that wait, and the flushes of concurrent stores share the disk's commits), else the
        index thread runs it once the rows are in: one hand-off to that thread and back, where
        a worker would add its start, its wake-ups and their contention for the interpreter,
        with nothing to overlap the write with but the rows. An index that would run that
        write, or wait for its flush, under a lock other processes wait for (PostgreSQL's
        batches) gets every write started ahead instead. An error of ``parse`` goes
        through once the file it no longer needs is removed.
        Without flushes (no ``SyncStorageArea``) a small dataset is parsed and written right
        here: there is no disk wait to overlap, and a thread hop would cost more than the write.
        """
        if self._transcoding.ingest_syntax:  # the file written may be a transcoded one: no write ahead
            return await offload(lambda: self.prepare(parse(data), origin))
        if inline and not self._files.sync:
            return self.prepare(parse(data), origin)
        started = time.perf_counter()
        file_uuid = self._files.new_name()
        writing: StartedCall[tuple[str, int]] = StartedCall()
        ahead = not inline or len(data) >= WRITE_AHEAD_BYTES or self._files.compress or not self._defer_writes
        if ahead:
            writing.start(self._files.write, data, file_uuid, writing.reached)
        else:
            writing.defer(self._files.write, data, file_uuid)
        try:
            if ahead:
                await writing.wait_reached()
            if inline:
                parsed, digest = self._parse(parse, data)
            else:
                parsed, digest = await offload(self._parse, parse, data)
            if self._files.compress:  # the stored size (and MD5) are known once written
                _, stored_size = await writing.wait()
                new = await offload(self._new_instance, parsed, origin, file_uuid, stored_size, digest)
            else:
                new = self._new_instance(parsed, origin, file_uuid, len(data), digest)
        except BaseException:
            await self._remove_written(writing, file_uuid)
            raise
        return PreparedInstance(parsed, new, started, writing)

    async def _remove_written(self, writing: StartedCall[tuple[str, int]], file_uuid: str) -> None:
        """Remove the file of a write whose instance is not indexed, once the write ended, or the
        name it was given when the write never began (shielded)."""
        with trio.CancelScope(shield=True):
            if writing.drop():
                await offload(self._files.remove, file_uuid)
                return
            try:
                file_uuid, _ = await writing.wait()
            except OrthancError:  # nothing was written
                return
            await offload(self._files.remove, file_uuid)

    def _ingest_transcoded(self, parsed: ParsedInstance) -> ParsedInstance:
        """The instance in the IngestTranscoding syntax, when that applies to it (blocking)."""
        target = self._transcoding.ingest_target(parsed.transfer_syntax)
        if target is None:
            return parsed
        data = transcoded_or_original(parsed.data, target, self._transcoding.lossy_quality)
        return parsed if data is parsed.data else parse_instance(data)

    def _parse(self, parse: Callable[[bytes], ParsedInstance], data: bytes) -> tuple[ParsedInstance, str]:
        parsed = parse(data)
        return parsed, self._digest(parsed.data)

    def _digest(self, data: bytes) -> str:
        """The MD5 recorded for a stored file, if the configuration asks for it."""
        return hashlib.md5(data).hexdigest() if self._settings.store_md5 else ""

    async def adopt(self, file_uuid: str, data: bytes, origin: Origin) -> IngestResult:
        """Index the durable file ``file_uuid`` of the storage area, holding ``data`` as stored
        uncompressed (one whose index entry a crash lost); removed if the instance is stored already."""
        parsed = await offload(parse_instance, data)
        new = self._new_instance(parsed, origin, file_uuid, len(data), self._digest(data))
        return await self.commit(PreparedInstance(parsed, new, time.perf_counter()))

    def parse_and_prepare(self, data: bytes, origin: Origin) -> PreparedInstance:
        """:func:`parse_instance` then :meth:`prepare`: what :meth:`store` runs in a worker thread."""
        return self.prepare(parse_instance(data), origin)

    async def reconstruct(self, instances: list[str]) -> None:
        """Read each instance's file again and record its main DICOM tags and identifiers anew, on
        the instance and its ancestors (attachments and metadata stay; no change is logged)."""
        for public_id in instances:
            attachment = await self._index.dicom_attachment(public_id)
            if attachment is None:  # deleted meanwhile
                continue
            try:
                data = await offload(self._files.read, attachment.uuid, attachment.compression == COMPRESSION_ZLIB)
            except FileNotFoundError as exc:
                raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}") from exc
            parsed = await offload(parse_instance, data)
            await self._index.set_main_tags(public_id, parsed.tags, _identifiers(parsed.tags))

    async def reconstruct_all(self) -> None:
        """:meth:`reconstruct` of every stored instance, a batch at a time."""
        since = 0
        while batch := await self._index.list_ids(Level.INSTANCE, since, RECONSTRUCT_BATCH):
            await self.reconstruct(batch)
            since += len(batch)

    def discard(self, prepared: PreparedInstance) -> None:
        """Remove the file of a prepared instance that will not be committed (blocking; for
        instances from :meth:`prepare`, whose file is written already)."""
        self._files.remove(prepared.new.attachment.uuid)

    async def abandon(self, prepared: PreparedInstance) -> None:
        """Remove the file of a prepared instance that will not be committed, once it is written (shielded)."""
        if prepared.written is not None:
            await self._remove_written(prepared.written, prepared.new.attachment.uuid)
            return
        with trio.CancelScope(shield=True):
            await offload(self.discard, prepared)

    def _new_instance(
        self, parsed: ParsedInstance, origin: Origin, file_uuid: str, stored_size: int, md5: str
    ) -> NewInstance:
        """With compression, the MD5 of the stored file is read back (blocking) when MD5s are recorded."""
        data = parsed.data
        compressed = self._files.compress
        attachment = Attachment(
            content_type=ATTACHMENT_DICOM,
            uuid=file_uuid,
            uncompressed_size=len(data),
            compressed_size=stored_size,
            uncompressed_md5=md5,
            compressed_md5=self._files.stored_md5(file_uuid) if compressed and md5 else md5,
            compression=COMPRESSION_ZLIB if compressed else COMPRESSION_NONE,
        )
        now = orthanc_date()
        metadata = {
            "ReceptionDate": now,
            "RemoteAET": origin.remote_aet,
            "Origin": origin.kind,
            "TransferSyntax": parsed.transfer_syntax,
            "SopClassUid": parsed.sop_class_uid,
            "RemoteIP": origin.remote_ip,
        }
        if parsed.index_in_series is not None:
            metadata["IndexInSeries"] = parsed.index_in_series
        if origin.called_aet is not None:
            metadata["CalledAET"] = origin.called_aet
        if origin.http_username is not None:
            metadata["HttpUsername"] = origin.http_username
        if parsed.pixel_data_offset is not None:
            metadata["PixelDataOffset"] = str(pixel_data_element_offset(parsed))
        series_metadata = {"RemoteAET": origin.remote_aet}
        if parsed.expected_instances is not None and parsed.expected_instances > 0:  # a count of 0 says nothing
            series_metadata["ExpectedNumberOfInstances"] = str(parsed.expected_instances)
        return NewInstance(
            ids=parsed.ids,
            tags=parsed.tags,
            identifiers=_identifiers(parsed.tags),
            attachment=attachment,
            metadata=metadata,
            series_metadata=series_metadata,
            last_update=now,
            index_in_series=parsed.index_in_series,
            expected_instances=parsed.expected_instances,
        )

    async def store(self, data: bytes, origin: Origin = Origin()) -> IngestResult:
        """Parse, write and index one file. Raises OrthancError on bad input."""
        return await self.commit(await offload(self.parse_and_prepare, data, origin))

    async def commit(self, prepared: PreparedInstance, *, overlap: bool = True) -> IngestResult:
        """Index a prepared instance and tell the listeners.

        ``overlap`` false: a deferred write is left to the index thread even when other stores
        keep it busy (see :meth:`receive`).

        If indexing fails or finds the instance already stored, the new file is
        removed, so nothing partial stays.
        """
        parsed, new, written = prepared.parsed, prepared.new, prepared.written
        if written is not None and overlap and self._indexing:
            written.start_deferred()  # see receive: it would wait for the other stores anyway
        self._indexing += 1
        try:
            result = await self._index.store(
                new,
                overwrite=self._settings.overwrite_instances,
                written=written,
            )
            if written is not None and not result.already_stored:
                await written.wait()  # ended already: the index waited for it (or ran it)
        except BaseException:
            await self.abandon(prepared)
            raise
        finally:
            self._indexing -= 1
        if result.already_stored:  # its file, or the name a write never begun was given, goes
            await self.abandon(prepared)
            status = "AlreadyStored"
        else:
            if result.removed_files:
                await offload(self._files.remove_many, result.removed_files)
            self._stability.touch(parsed.ids)
            status = "Success"
        ingest_result = IngestResult(status=status, ids=parsed.ids, parsed=parsed)
        self._files.metrics.update_max(
            "orthanc_store_dicom_duration_ms", int((time.perf_counter() - prepared.started) * 1000)
        )
        for listener in self.listeners:
            await listener(ingest_result)
        log.debug("stored instance %s: %s", parsed.ids[3], status)
        return ingest_result
