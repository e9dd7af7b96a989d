"""ZIP archives and DICOMDIR media of stored resources: writing the archive a plan describes.

Two phases, as in Orthanc: at submission the requested resources are expanded
into a list of ZIP commands (:mod:`.archive_plan`, with the names of
:mod:`.archive_names`), which fixes InstancesCount and UncompressedSize; then an
:class:`ArchiveBuilder` executes the commands one step at a time. Each step is prepared (awaits, no
state change) and then committed (no await), so a job interrupted between the
two redoes the step without corrupting the archive. The files are read and
deflated a few steps ahead in worker threads (:func:`~node.offload.offload_ahead`): memory is bounded by that
lookahead times the size of one file, never by the size of the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..clock import utc_now
from ..dicom.media import DicomDir, MediaEntry, media_entry
from ..dicom.parse import read_dataset
from ..errors import ErrorCode, OrthancError
from ..offload import Pending, offload, offload_ahead
from ..storage.files import FileStore
from ..storage.index.base import COMPRESSION_ZLIB
from ..units import MEGABYTE
from .archive_plan import ArchiveKind, ArchivePlan, CommandType, ZipCommand
from .transcoding import transcoded_or_original
from .zip_writer import DeflatedFile, ZipMember, ZipWriter, deflate

ZIP_COMMENT = b"Created by Orthanc"
DICOMDIR_NAME = "DICOMDIR"
# Files read and deflated ahead of the one being written: enough to keep the
# cores busy while the previous file goes out, few enough to bound memory.
LOOKAHEAD = 3


@dataclass(frozen=True)
class _Prepared:
    """A file read and deflated in a worker thread; None content when it vanished."""

    content: DeflatedFile | None
    media: MediaEntry | None = None


@dataclass(frozen=True)
class Transcoding:
    """The ``Transcode`` of an archive: the syntax of its files, and the quality of a lossy one."""

    syntax: str
    quality: int


def _prepare_file(
    store: FileStore, command: ZipCommand, media: bool, extended: bool, transcoding: Transcoding | None
) -> _Prepared:
    """Read, transcode (a file that cannot be keeps its syntax) and deflate one file."""
    attachment = command.attachment
    assert attachment is not None
    try:
        data = store.read(attachment.uuid, attachment.compression == COMPRESSION_ZLIB)
    except FileNotFoundError:  # instance deleted after submission: silently skipped
        return _Prepared(None)
    if transcoding is not None:
        data = transcoded_or_original(data, transcoding.syntax, transcoding.quality)
    entry = None
    if media:
        dataset = read_dataset(data, stop_before_pixels=True)
        entry = media_entry(dataset, tuple(command.path.split("/")), extended=extended, now=utc_now())
    return _Prepared(deflate(data), entry)


@dataclass(frozen=True)
class PreparedStep:
    """What one step adds to the archive, not yet recorded by the builder."""

    members: tuple[ZipMember, ...] = ()
    media: MediaEntry | None = None
    end: bytes | None = None  # the central directory, on the final step

    @property
    def chunks(self) -> list[bytes]:
        """The bytes to deliver, in order."""
        chunks = [chunk for member in self.members for chunk in member.chunks]
        return [*chunks, self.end] if self.end is not None else chunks


class ArchiveBuilder:
    """Runs an :class:`ArchivePlan` step by step; the caller decides where the bytes go.

    ``prepare_step`` may be cancelled at any await without effect; ``commit``
    (no await) records the step once its bytes are delivered.
    """

    def __init__(self, plan: ArchivePlan, store: FileStore, transcoding: Transcoding | None = None) -> None:
        self.plan = plan
        self._store = store
        self._transcoding = transcoding
        self._writer = ZipWriter(zip64=plan.zip64, comment=ZIP_COMMENT)
        self._dicomdir = DicomDir() if plan.kind == ArchiveKind.MEDIA else None
        self._ahead: dict[int, Pending[_Prepared]] = {}
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= self.plan.steps

    @property
    def archive_size(self) -> int:
        return self._writer.offset

    def progress(self) -> float:
        """Steps done over all but the final one, capped: 100% only once the archive is complete."""
        return min(1.0, self.position / max(1, self.plan.steps - 1))

    def _prefetch(self, start: int) -> None:
        commands = self.plan.commands
        upcoming = (i for i in range(start, len(commands)) if commands[i].type == CommandType.WRITE)
        media, extended = self._dicomdir is not None, self.plan.extended
        for _, i in zip(range(LOOKAHEAD), upcoming, strict=False):
            if i not in self._ahead:
                self._ahead[i] = offload_ahead(
                    _prepare_file, self._store, commands[i], media, extended, self._transcoding
                )

    async def prepare_step(self) -> PreparedStep:
        if self.done:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "The archive is already complete")
        if self.position == len(self.plan.commands):
            return await self._prepare_final()
        command = self.plan.commands[self.position]
        if command.type != CommandType.WRITE:
            return PreparedStep()  # folders are implicit in the ZIP
        self._prefetch(self.position)
        prepared = await self._ahead[self.position].result()
        if prepared.content is None:
            return PreparedStep()
        return PreparedStep((self._writer.member(command.path, prepared.content),), prepared.media)

    async def _prepare_final(self) -> PreparedStep:
        if self._dicomdir is None:
            return PreparedStep(end=self._writer.end())
        data = await offload(self._dicomdir.encode)
        member = self._writer.member(DICOMDIR_NAME, await offload(deflate, data))
        return PreparedStep((member,), end=self._writer.end(member))

    def commit(self, step: PreparedStep) -> None:
        for member in step.members:
            self._writer.append(member)
        if step.media is not None and self._dicomdir is not None:
            self._dicomdir.add(step.media)
        if step.end is not None:
            self._writer.close(step.end)
        self._ahead.pop(self.position, None)
        self.position += 1

    def close(self) -> None:
        """Drop the read-ahead (on cancel, failure or completion)."""
        for pending in self._ahead.values():
            pending.cancel()
        self._ahead.clear()

    def content(self) -> dict[str, Any]:
        """The ``Content`` keys of an Archive/Media job that depend on the archive itself."""
        plan, size = self.plan, self.archive_size
        return {
            "InstancesCount": plan.instances_count,
            "UncompressedSize": str(plan.uncompressed_size),
            "UncompressedSizeMB": plan.uncompressed_size // MEGABYTE,
            "ArchiveSize": str(size),
            "ArchiveSizeMB": size // MEGABYTE,
        }
