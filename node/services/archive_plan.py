"""What a ZIP archive or DICOMDIR media of stored resources will hold, fixed at submission.

The requested resources are expanded into a patient/study/series tree and walked in
archive order, then turned into a list of ZIP commands (open folder, write file,
close folder), which fixes the job's InstancesCount and UncompressedSize before any
byte is written. :mod:`.archive_builder` executes the commands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..dicom.ids import Level
from ..dicom.tag_numbers import (
    ACCESSION_NUMBER,
    MODALITY,
    PATIENT_ID,
    PATIENT_NAME,
    SERIES_DESCRIPTION,
    STUDY_DESCRIPTION,
)
from ..dicom.tags import format_tag
from ..errors import ErrorCode, OrthancError
from ..storage.index import Index, ResourceRecord
from ..storage.index.base import Attachment
from .archive_names import UniqueNames, check_entry_path, file_name, folder_name
from .zip_writer import ZIP64_COUNT_THRESHOLD, ZIP64_SIZE_THRESHOLD

MEDIA_FOLDER = "IMAGES"


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


# -- expanding the requested resources ------------------------------------------


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
            files = await self._index.dicom_attachments(chosen)  # one query for the whole series
            # An instance deleted meanwhile has no file any more: skipped.
            instances = [(instance, files[instance]) for instance in chosen if instance in files]
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


# -- the commands ----------------------------------------------------------------


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


def _tag(record: ResourceRecord, tag: int) -> str:
    return record.main_tags.get(format_tag(tag), "")


def _archive_commands(selection: list[SelectedSeries]) -> list[ZipCommand]:
    commands: list[ZipCommand] = []
    patients = UniqueNames()
    studies: dict[str, UniqueNames] = {}
    series_names: dict[str, UniqueNames] = {}
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
            name = folder_name(_tag(patient, PATIENT_ID), _tag(patient, PATIENT_NAME), "Unknown Patient")
            open_folder(patient.public_id, patients.take(name))
        if opened[1:2] != [study.public_id]:
            close_to(1)
            name = folder_name(_tag(study, ACCESSION_NUMBER), _tag(study, STUDY_DESCRIPTION), "Unknown Study")
            open_folder(study.public_id, studies.setdefault(patient.public_id, UniqueNames()).take(name))
        close_to(2)
        name = folder_name(_tag(series, MODALITY), _tag(series, SERIES_DESCRIPTION), "Unknown Series")
        open_folder(series.public_id, series_names.setdefault(study.public_id, UniqueNames()).take(name))
        modality = _tag(series, MODALITY)
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
