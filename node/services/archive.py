"""ZIP archives and DICOMDIR media of stored resources (archive-media.md).

Two phases, as in Orthanc: at submission the requested resources are expanded
into a list of ZIP commands (open folder, write file, close folder), which
fixes InstancesCount and UncompressedSize; then an :class:`ArchiveBuilder`
executes the commands one step at a time. Each step is prepared (awaits, no
state change) and then committed (no await), so a job interrupted between the
two redoes the step without corrupting the archive. The files are read and
deflated a few steps ahead in worker threads: memory is bounded by that
lookahead times the size of one file, never by the size of the archive.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from ..dicom.ids import Level
from ..dicom.media import DicomDir, MediaEntry, media_entry
from ..dicom.parse import read_dataset
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Index, ResourceRecord
from ..storage.index.base import COMPRESSION_ZLIB, Attachment
from .zip_writer import ZIP64_COUNT_THRESHOLD, ZIP64_SIZE_THRESHOLD, DeflatedFile, ZipMember, ZipWriter, deflate

ZIP_COMMENT = b"Created by Orthanc"
MEDIA_FOLDER = "IMAGES"
DICOMDIR_NAME = "DICOMDIR"
# Files read and deflated ahead of the one being written: enough to keep the
# cores busy while the previous file goes out, few enough to bound memory.
LOOKAHEAD = 3

_MB = 1024 * 1024


class ArchiveKind(enum.Enum):
    """The two flavours; the value is the job ``Type``."""

    ARCHIVE = "Archive"
    MEDIA = "Media"


class CommandType(enum.Enum):
    OPEN = "open"
    WRITE = "write"
    CLOSE = "close"


@dataclass(frozen=True)
class ZipCommand:
    """One ZIP command; a WRITE carries the member's full path and the file to copy.

    The path of a WRITE is checked when the command is made (:func:`check_entry_path`):
    no member is ever written under a name that leads out of the folder it is extracted to.
    """

    type: CommandType
    path: str
    instance: str = ""
    attachment: Attachment | None = None

    def __post_init__(self) -> None:
        if self.type is CommandType.WRITE:
            check_entry_path(self.path)


# -- names of folders and files (archive-media.md §5) ------------------------

_KEPT = re.compile(r"[^A-Za-z0-9._\s]")
_SPACES = re.compile(r"\s+")
_DOTS_AND_SPACES = re.compile(r"[. ]*")
# What a component of an entry path never contains: separators of any system, a drive
# letter's colon, control characters (NUL included).
_UNSAFE_IN_COMPONENT = re.compile(r"[/\\:\x00-\x1f\x7f]")


def check_entry_path(path: str) -> None:
    """Refuse (error -1: names are made safe before) a path that is absolute, has an empty,
    `.` or `..` component (or one that some systems trim down to those), or a component
    holding a separator or a control character."""
    for component in path.split("/"):
        if _DOTS_AND_SPACES.fullmatch(component) or _UNSAFE_IN_COMPONENT.search(component):
            raise OrthancError(ErrorCode.INTERNAL_ERROR, f"Unsafe entry name in an archive: {path!r}")


def folder_name(first: str, second: str, fallback: str) -> str:
    """Two main tags joined by a space, reduced to portable characters.

    Orthanc keeps a name made only of dots, so that a patient whose PatientID is `..`
    yields an entry `../…` that a naive extractor writes outside its folder; such a name,
    like an empty one, becomes ``fallback`` here.
    """
    text = f"{first} {second}".encode("ascii", "ignore").decode("ascii")
    text = _SPACES.sub(" ", _KEPT.sub("", text.replace("^", " "))).strip()
    return fallback if _DOTS_AND_SPACES.fullmatch(text) else text


def file_name(modality: str, counter: int) -> str:
    """``MR000000.dcm``: a modality prefix and a per-series counter, 8 characters in all."""
    letters = re.sub(r"[^A-Za-z0-9]", "", modality).upper()
    if len(letters) >= 2:
        return f"{letters[:2]}{counter:06d}.dcm"
    if letters:
        return f"{letters}{counter:07d}.dcm"
    return f"{counter:08d}.dcm"


class _UniqueNames:
    """Names already used in one folder; a repeated one gets ``-2``, ``-3``…"""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, name: str) -> str:
        candidate, suffix = name, 1
        while candidate in self._used:
            suffix += 1
            candidate = f"{name}-{suffix}"
        self._used.add(candidate)
        return candidate


def _tag(record: ResourceRecord, tag: str) -> str:
    return record.main_tags.get(tag, "")


# -- expanding the requested resources (archive-media.md §4) -----------------


@dataclass
class _Node:
    record: ResourceRecord
    whole: bool = False
    children: dict[str, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class SelectedSeries:
    """A series to archive with its ancestors and its instances, in archive order."""

    patient: ResourceRecord
    study: ResourceRecord
    series: ResourceRecord
    instances: list[tuple[str, Attachment]]


class _Expander:
    """Places every requested ID in a patient/study/series/instance tree, then walks it."""

    def __init__(self, index: Index) -> None:
        self._index = index
        self._records: dict[str, ResourceRecord] = {}

    async def _record(self, public_id: str) -> ResourceRecord | None:
        record = self._records.get(public_id)
        if record is None:
            record = await self._index.resource(public_id)
            if record is not None:
                self._records[public_id] = record
        return record

    async def _ancestry(self, public_id: str) -> list[ResourceRecord]:
        record = await self._record(public_id)
        if record is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        chain = [record]
        while chain[0].parent is not None:
            parent = await self._record(chain[0].parent)
            if parent is None:  # deleted meanwhile
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
            chain.insert(0, parent)
        return chain

    async def expand(self, requested: list[str]) -> list[SelectedSeries]:
        roots: dict[str, _Node] = {}
        for public_id in requested:
            nodes, node = roots, None
            for record in await self._ancestry(public_id):
                node = nodes.setdefault(record.public_id, _Node(record))
                nodes = node.children
            assert node is not None
            node.whole = True
        selected: list[SelectedSeries] = []
        for patient_id in sorted(roots):
            await self._walk(roots[patient_id], [], selected, whole=False)
        return selected

    async def _walk(self, node: _Node, ancestors: list[ResourceRecord], out: list[SelectedSeries], whole: bool) -> None:
        whole = whole or node.whole
        record = node.record
        if record.level == Level.SERIES:
            chosen = record.children if whole else [i for i in record.children if i in node.children]
            instances = []
            for instance in chosen:
                attachment = await self._index.dicom_attachment(instance)
                if attachment is not None:  # deleted meanwhile: skipped
                    instances.append((instance, attachment))
            out.append(SelectedSeries(ancestors[0], ancestors[1], record, instances))
            return
        child_ids = sorted(record.children) if whole else sorted(node.children)
        for child_id in child_ids:
            child = node.children.get(child_id)
            if child is None:
                found = await self._record(child_id)
                if found is None:
                    continue
                child = _Node(found)
            await self._walk(child, [*ancestors, record], out, whole)


# -- the plan: commands fixed at submission ----------------------------------


@dataclass
class ArchivePlan:
    kind: ArchiveKind
    commands: list[ZipCommand]
    instances_count: int
    uncompressed_size: int
    extended: bool = False

    @property
    def steps(self) -> int:
        """One per command, plus the final one (DICOMDIR and central directory)."""
        return len(self.commands) + 1

    @property
    def zip64(self) -> bool:
        return self.uncompressed_size >= ZIP64_SIZE_THRESHOLD or self.instances_count >= ZIP64_COUNT_THRESHOLD


def _archive_commands(selection: list[SelectedSeries]) -> list[ZipCommand]:
    commands: list[ZipCommand] = []
    patients = _UniqueNames()
    studies: dict[str, _UniqueNames] = {}
    series_names: dict[str, _UniqueNames] = {}
    opened: list[str] = []  # public IDs of the open patient and study folders
    paths: list[str] = []

    def close_to(depth: int) -> None:
        while len(opened) > depth:
            opened.pop()
            paths.pop()
            commands.append(ZipCommand(CommandType.CLOSE, "/".join(paths)))

    def open_folder(public_id: str, name: str) -> None:
        opened.append(public_id)
        paths.append(name)
        commands.append(ZipCommand(CommandType.OPEN, "/".join(paths)))

    for item in selection:
        patient, study, series = item.patient, item.study, item.series
        if opened[:1] != [patient.public_id]:
            close_to(0)
            name = folder_name(_tag(patient, "0010,0020"), _tag(patient, "0010,0010"), "Unknown Patient")
            open_folder(patient.public_id, patients.take(name))
        if opened[1:2] != [study.public_id]:
            close_to(1)
            name = folder_name(_tag(study, "0008,0050"), _tag(study, "0008,1030"), "Unknown Study")
            open_folder(study.public_id, studies.setdefault(patient.public_id, _UniqueNames()).take(name))
        close_to(2)
        name = folder_name(_tag(series, "0008,0060"), _tag(series, "0008,103e"), "Unknown Series")
        open_folder(series.public_id, series_names.setdefault(study.public_id, _UniqueNames()).take(name))
        modality = _tag(series, "0008,0060")
        for counter, (instance, attachment) in enumerate(item.instances):
            path = f"{'/'.join(paths)}/{file_name(modality, counter)}"
            commands.append(ZipCommand(CommandType.WRITE, path, instance, attachment))
    close_to(0)
    return commands


def _media_commands(selection: list[SelectedSeries]) -> list[ZipCommand]:
    instances = [entry for item in selection for entry in item.instances]
    return [
        ZipCommand(CommandType.OPEN, MEDIA_FOLDER),
        *(
            ZipCommand(CommandType.WRITE, f"{MEDIA_FOLDER}/IM{n}", instance, attachment)
            for n, (instance, attachment) in enumerate(instances)
        ),
        ZipCommand(CommandType.CLOSE, MEDIA_FOLDER),
    ]


async def plan_archive(index: Index, resources: list[str], kind: ArchiveKind, *, extended: bool = False) -> ArchivePlan:
    """Expand the requested resources into ZIP commands; unknown IDs are error 17."""
    selection = await _Expander(index).expand(resources)
    build = _archive_commands if kind == ArchiveKind.ARCHIVE else _media_commands
    commands = build(selection)
    writes = [c.attachment for c in commands if c.attachment is not None]
    return ArchivePlan(
        kind=kind,
        commands=commands,
        instances_count=len(writes),
        uncompressed_size=sum(a.uncompressed_size for a in writes),
        extended=extended,
    )


# -- executing the plan -------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """A file read and deflated in a worker thread; None content when it vanished."""

    content: DeflatedFile | None
    media: MediaEntry | None = None


def _prepare_file(store: FileStore, command: ZipCommand, media: bool, extended: bool) -> _Prepared:
    attachment = command.attachment
    assert attachment is not None
    try:
        data = store.read(attachment.uuid, attachment.compression == COMPRESSION_ZLIB)
    except FileNotFoundError:  # instance deleted after submission: silently skipped
        return _Prepared(None)
    entry = None
    if media:
        dataset = read_dataset(data, stop_before_pixels=True)
        entry = media_entry(dataset, tuple(command.path.split("/")), extended=extended)
    return _Prepared(deflate(data), entry)


_executor: ThreadPoolExecutor | None = None


def _threads() -> ThreadPoolExecutor:
    """Worker threads shared by every archive: they bound the CPU spent deflating."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="archive")
    return _executor


async def _wait(future: Future[Any]) -> Any:
    """Await a concurrent future from Trio without holding a thread for the wait."""
    if not future.done():
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()

        def wake(_: Future[Any]) -> None:
            with contextlib.suppress(trio.RunFinishedError):  # the node stopped meanwhile
                token.run_sync_soon(done.set)

        future.add_done_callback(wake)
        await done.wait()
    return future.result()


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

    def __init__(self, plan: ArchivePlan, store: FileStore) -> None:
        self.plan = plan
        self._store = store
        self._writer = ZipWriter(zip64=plan.zip64, comment=ZIP_COMMENT)
        self._dicomdir = DicomDir() if plan.kind == ArchiveKind.MEDIA else None
        self._futures: dict[int, Future[_Prepared]] = {}
        self.position = 0

    @property
    def done(self) -> bool:
        return self.position >= self.plan.steps

    @property
    def archive_size(self) -> int:
        return self._writer.offset

    def progress(self) -> float:
        """Steps done over all but the final one, capped (jobs.md §11)."""
        return min(1.0, self.position / max(1, self.plan.steps - 1))

    def _prefetch(self, start: int) -> None:
        commands = self.plan.commands
        upcoming = (i for i in range(start, len(commands)) if commands[i].type == CommandType.WRITE)
        media, extended = self._dicomdir is not None, self.plan.extended
        for _, i in zip(range(LOOKAHEAD), upcoming, strict=False):
            if i not in self._futures:
                work = partial(_prepare_file, self._store, commands[i], media, extended)
                self._futures[i] = _threads().submit(work)

    async def prepare_step(self) -> PreparedStep:
        if self.done:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "The archive is already complete")
        if self.position == len(self.plan.commands):
            return await self._prepare_final()
        command = self.plan.commands[self.position]
        if command.type != CommandType.WRITE:
            return PreparedStep()  # folders are implicit in the ZIP
        self._prefetch(self.position)
        prepared: _Prepared = await _wait(self._futures[self.position])
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
        self._futures.pop(self.position, None)
        self.position += 1

    def close(self) -> None:
        """Drop the read-ahead (on cancel, failure or completion)."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def content(self) -> dict[str, Any]:
        """The ``Content`` keys of an Archive/Media job that depend on the archive itself."""
        plan, size = self.plan, self.archive_size
        return {
            "InstancesCount": plan.instances_count,
            "UncompressedSize": str(plan.uncompressed_size),
            "UncompressedSizeMB": plan.uncompressed_size // _MB,
            "ArchiveSize": str(size),
            "ArchiveSizeMB": size // _MB,
        }
