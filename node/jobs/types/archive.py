"""Archive and Media jobs: an :class:`ArchiveBuilder` driven by the engine, one ZIP command per step.

The bytes go either straight to the HTTP client (:class:`StreamDelivery`, the
synchronous routes) or to a temporary file that becomes the job's output
(:class:`FileDelivery`). Each step delivers its bytes in one uninterruptible
operation and only then commits it in the builder, so a pause or a cancel at
any await leaves the archive consistent. These jobs are never saved: their
temporary files are removed on cancel, failure, eviction and at start-up.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BufferedWriter
from pathlib import Path
from typing import Any, ClassVar

import trio

from ...errors import ErrorCode, OrthancError
from ...offload import offload
from ...services.archive_builder import ArchiveBuilder, Transcoding
from ...services.archive_plan import ArchiveKind, plan_archive
from ...services.bundle import ServiceBundle
from ...storage.files import write_failure
from ...storage.private import create_file, make_folders
from ...storage.settings import StorageSettings
from ...units import MEGABYTE
from ..job import Job, JobOutput, Step, StepOutcome, StopReason

log = logging.getLogger(__name__)

WRITE_BATCH = 1 * MEGABYTE  # bytes of an asynchronous archive gathered before one write to its file
CLIENT_GONE = "HTTP client has disconnected while creating an archive in synchronous mode"


# This run's archive folder, per storage area (see archive_folder).
_FOLDERS: dict[tuple[Path, str], Path] = {}


def _naming(settings: StorageSettings) -> tuple[Path, str]:
    """The temporary folder, and the start of the names of this storage area's archive folders there.

    One storage area has a single node, so the folders of its name that a start-up finds are stale.
    """
    base = settings.temporary_directory or Path(tempfile.gettempdir())
    owner = hashlib.sha1(str(settings.storage_directory.resolve()).encode("utf-8")).hexdigest()[:16]
    return base, f"node-archives-{owner}-"


def _is_private_folder(path: str | os.PathLike[str]) -> bool:
    """A real folder (not a link) of this account that no other account may enter."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    others = stat.S_IRWXG | stat.S_IRWXO
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & others


def archive_folder(settings: StorageSettings) -> Path:
    """The folder of this run's asynchronous archives, made on first use.

    Its name comes from ``mkdtemp`` (unpredictable, created private), never a fixed one that
    another account could prepare in a shared temporary folder; before each reuse it is
    checked to still be ours and private, otherwise a new one replaces it.
    """
    base, prefix = _naming(settings)
    folder = _FOLDERS.get((base, prefix))
    if folder is not None and _is_private_folder(folder):
        return folder
    if folder is not None and folder.exists():
        log.warning("the archive folder %s is no longer private: using a new one", folder)
    make_folders(base)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    _FOLDERS[(base, prefix)] = folder
    return folder


SHARED_ARCHIVES = "job-archives"  # in the storage area, beside its hashed folders (which the sweep alone walks)


def shared_archive_folder(settings: StorageSettings) -> Path:
    """The folder of the asynchronous archives of a cluster: in the storage area every member
    shares, so that any member serves an archive whichever member made it (its row records where)."""
    folder = settings.storage_directory / SHARED_ARCHIVES
    make_folders(folder)
    return folder


def remove_stale_archives(settings: StorageSettings) -> int:
    """Delete the archives a previous run left behind (jobs are not saved, so nobody can want them).

    Only folders of this account are touched: one of the same name owned by another is left, and logged.
    """
    base, prefix = _naming(settings)
    _FOLDERS.pop((base, prefix), None)
    if not base.is_dir():
        return 0
    count = 0
    with os.scandir(base) as entries:
        stale = [entry.path for entry in entries if entry.name.startswith(prefix)]
    for folder in stale:
        if not _is_private_folder(folder):
            log.warning("leaving %s alone: not a private folder of this account", folder)
            continue
        count += len(os.listdir(folder))
        shutil.rmtree(folder, ignore_errors=True)
    return count


class Delivery(abc.ABC):
    """Where the bytes of the archive go."""

    @abc.abstractmethod
    async def deliver(self, chunks: list[bytes]) -> None:
        """Hand over all the bytes of one step, or none of them if interrupted."""

    @abc.abstractmethod
    def finished(self) -> None:
        """The last step was delivered."""

    @abc.abstractmethod
    async def stop(self, reason: StopReason) -> None:
        """The job left Running (see :meth:`Job.stop`)."""

    def output(self) -> JobOutput | None:
        return None


class StreamDelivery(Delivery):
    """Synchronous archives: each step's bytes go to the HTTP answer as soon as it is read."""

    def __init__(self) -> None:
        # No buffer: a step waits for the client, which bounds memory and paces the job.
        self._send, self._receive = trio.open_memory_channel[list[bytes]](0)
        self.complete = False

    async def deliver(self, chunks: list[bytes]) -> None:
        try:
            await self._send.send(chunks)  # atomic: delivered entirely or, if cancelled, not at all
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, CLIENT_GONE) from exc

    def finished(self) -> None:
        self.complete = True
        self._send.close()

    async def stop(self, reason: StopReason) -> None:
        if reason in (StopReason.FAILURE, StopReason.CANCELED):
            self._send.close()

    async def chunks(self, submit: Callable[[], Awaitable[object]]) -> AsyncIterator[bytes]:
        """The body of the HTTP answer; ends early (truncated) if the job fails or is cancelled.

        The job is submitted only once the body is being sent: an answer that is
        never sent leaves no job blocked on a reader that will never come.
        Leaving early (the client went away) closes the channel, which fails the job.
        """
        async with self._receive:
            await submit()
            async for step in self._receive:
                for chunk in step:
                    yield chunk
        if not self.complete:
            # After the headers, the only way to tell the client is to cut the stream short.
            log.warning("archive job stopped before the end: the HTTP answer is truncated")
            raise OrthancError(ErrorCode.CANCELED_JOB, "The archive job stopped before the end: stream truncated")


class FileDelivery(Delivery):
    """Asynchronous archives: a temporary file, the job's output once complete."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"{uuid.uuid4()}.zip"
        self._file: BufferedWriter | None = None
        self._gathered: list[bytes] = []  # steps delivered, not written yet
        self._gathered_size = 0

    def _write(self, chunks: list[bytes]) -> None:
        if self._file is None:
            self._file = os.fdopen(create_file(self.path), "wb")  # kept open across steps
        for chunk in chunks:
            self._file.write(chunk)
        self._file.flush()  # a full disk fails this step, not the close at the end

    async def deliver(self, chunks: list[bytes]) -> None:
        """The steps' bytes gathered up to WRITE_BATCH, then written in one worker call: a thread
        hop per small file cost more than its write, and made a study of tiny files slow."""
        self._gathered += chunks
        self._gathered_size += sum(map(len, chunks))
        if self._gathered_size < WRITE_BATCH:
            return
        gathered, self._gathered, self._gathered_size = self._gathered, [], 0
        try:
            # Not cancellable: the write completes, then the step commits.
            await offload(self._write, gathered)
        except OSError as exc:
            raise write_failure(exc, self.path) from exc

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _remove(self) -> None:
        with contextlib.suppress(OSError):  # bytes that could not be flushed: the file goes anyway
            self._close()
        self.path.unlink(missing_ok=True)

    def finished(self) -> None:
        """The last gathered bytes (under WRITE_BATCH) written here, the file closed: the output is
        readable as soon as the job succeeds."""
        gathered, self._gathered, self._gathered_size = self._gathered, [], 0
        try:
            self._write(gathered)
            self._close()
        except OSError as exc:
            raise write_failure(exc, self.path) from exc

    async def stop(self, reason: StopReason) -> None:
        # A paused job keeps its open file; one paused by a shutdown leaves it for the start-up clean-up.
        if reason in (StopReason.FAILURE, StopReason.CANCELED):
            await offload(self._remove)

    def output(self) -> JobOutput | None:
        return JobOutput(path=self.path, filename="archive.zip")


class SpooledDelivery(FileDelivery):
    """Synchronous archives without streaming (SynchronousZipStream false): the whole ZIP goes
    to a temporary file, which the HTTP answer sends once complete, with its length. The file is
    the route's, not an output of the job (it would take the place of an asynchronous one)."""

    def output(self) -> JobOutput | None:
        return None


class ArchiveJob(Job):
    """Type ``Archive``; :class:`MediaJob` differs only by its kind and name."""

    type_name: ClassVar[str] = "Archive"
    kind: ClassVar[ArchiveKind] = ArchiveKind.ARCHIVE

    def __init__(
        self,
        resources: list[str],
        delivery: Delivery,
        *,
        extended: bool = False,
        transcode: str | None = None,
        description: str = "REST API",
    ) -> None:
        self.resources = list(resources)
        self.delivery = delivery
        self.extended = extended
        self.transcode = transcode
        self.description = description
        self.builder: ArchiveBuilder | None = None

    async def start(self, services: ServiceBundle) -> None:
        """Expand the resources now: the counts are fixed at submission, unknown IDs refuse it.

        A synchronous route calls it before answering (so errors still get their
        status), and the engine's own call then has nothing left to do.
        """
        if self.builder is None:
            plan = await plan_archive(services.index, self.resources, self.kind, extended=self.extended)
            transcoding = None
            if self.transcode is not None:
                transcoding = Transcoding(self.transcode, services.transcoding.lossy_quality)
            self.builder = ArchiveBuilder(plan, services.files, transcoding)

    def _builder(self) -> ArchiveBuilder:
        if self.builder is None:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "The archive job was not started")
        return self.builder

    async def step(self, services: ServiceBundle) -> StepOutcome:
        builder = self._builder()
        prepared = await builder.prepare_step()
        await self.delivery.deliver(prepared.chunks)
        builder.commit(prepared)  # after the last await: a step is all or nothing
        if builder.done:
            self.delivery.finished()
            return Step.DONE
        return Step.CONTINUE

    def progress(self) -> float:
        return self.builder.progress() if self.builder is not None else 0.0

    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"Description": self.description}
        if self.builder is not None:
            content.update(self.builder.content())
        if self.transcode is not None:
            content["Transcode"] = self.transcode
        return content

    async def stop(self, services: ServiceBundle, reason: StopReason) -> None:
        if self.builder is not None and reason is not StopReason.PAUSED:
            self.builder.close()
        await self.delivery.stop(reason)

    def reset(self) -> None:
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "Cannot resubmit the creation of an archive")

    def output(self) -> JobOutput | None:
        return self.delivery.output()


class MediaJob(ArchiveJob):
    type_name: ClassVar[str] = "Media"
    kind: ClassVar[ArchiveKind] = ArchiveKind.MEDIA


def archive_job(kind: ArchiveKind, resources: list[str], delivery: Delivery, **options: Any) -> ArchiveJob:
    job_class = MediaJob if kind == ArchiveKind.MEDIA else ArchiveJob
    return job_class(resources, delivery, **options)
