"""What the REST, DICOM and jobs layers may ask of an index.

Backends implement this class; nothing above storage/ knows which one runs, so
a PostgreSQL backend can follow without touching them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...dicom.ids import Level, OrthancIds
from ..thread import StartedCall
from .notifications import Notifications

# Orthanc's numbers for the built-in metadata (`?numeric`), and for attachments.
METADATA_NUMBERS: dict[str, int] = {
    "IndexInSeries": 1,
    "ReceptionDate": 2,
    "RemoteAET": 3,
    "ExpectedNumberOfInstances": 4,
    "ModifiedFrom": 5,
    "AnonymizedFrom": 6,
    "LastUpdate": 7,
    "Origin": 8,
    "TransferSyntax": 9,
    "SopClassUid": 10,
    "RemoteIP": 11,
    "CalledAET": 12,
    "HttpUsername": 13,
    "PixelDataOffset": 14,
}
ATTACHMENT_DICOM = 1
# The Origin metadata of an instance indexed again from its file after a crash (see
# services/recovery.py): who sent it was in the commit the crash lost. The next store of the
# same instance replaces it, so that what that store records (a sender's retry, a job's redone
# step and its ModifiedFrom) is not lost to an instance the sender was never told was stored.
RECOVERED_ORIGIN = "Unknown"
ATTACHMENT_NAMES: dict[str, int] = {"dicom": 1, "dicom-until-pixel-data": 3}
COMPRESSION_NONE = 1
COMPRESSION_ZLIB = 2


@dataclass
class Attachment:
    content_type: int
    uuid: str
    uncompressed_size: int
    compressed_size: int
    uncompressed_md5: str
    compressed_md5: str
    compression: int = COMPRESSION_NONE


@dataclass
class NewInstance:
    """Everything the index records for one received instance."""

    ids: OrthancIds
    tags: dict[Level, dict[str, str]]
    identifiers: dict[Level, dict[str, str]]
    attachment: Attachment
    metadata: dict[str, str]
    series_metadata: dict[str, str]
    last_update: str
    index_in_series: str | None
    expected_instances: int | None
    # Set (replaced) on the patient, study or series in the same transaction, created by this
    # instance or not: what a rewrite records of a new parent's source, at no extra write.
    parent_metadata: dict[Level, dict[str, str]] = field(default_factory=dict)


@dataclass
class StoreResult:
    already_stored: bool
    created: list[Level] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    series_completed: bool = False


@dataclass
class ResourceRecord:
    public_id: str
    level: Level
    parent: str | None
    main_tags: dict[str, str]
    patient_tags: dict[str, str]
    children: list[str]
    metadata: dict[str, str]


@dataclass
class Change:
    seq: int
    change_type: str
    public_id: str
    level: Level
    date: str


@dataclass
class DeleteResult:
    remaining_ancestor: tuple[str, Level] | None
    removed_files: list[str]


@dataclass(frozen=True)
class JobRow:
    """One row of the cluster's jobs table (see :mod:`.job_leases`)."""

    id: str
    data: str
    state: str
    priority: int
    seq: int
    owner: str | None
    generation: int
    lease_until: int
    command: str | None


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    generation: int
    data: str
    priority: int
    command: str | None


@dataclass(frozen=True)
class JobLease:
    """A row the member holds, as a renewal found it: its generation and the command waiting for it."""

    id: str
    generation: int
    command: str | None


@dataclass
class DescendantSummary:
    """What C-FIND reports of the descendants of one resource (its counters), and the
    instance whose file stands for the resource when a query needs more than main tags."""

    counts: dict[Level, int]  # descendants at each lower level
    modalities: list[str]  # distinct Modality main tags of the series below, sorted
    sop_classes: list[str]  # distinct SOP class UIDs of the instances below, sorted
    first_instance: str | None  # the instance stored first


class Index(abc.ABC):
    """Resources, main tags, metadata, attachments, changes and properties."""

    # Whether :meth:`store` may be given a deferred write (see StartedCall.defer) that no thread
    # started yet: an index that would run it, or wait for its flush, while holding a lock
    # that other processes wait for says no, and gets writes already under way.
    takes_deferred_writes: ClassVar[bool] = False

    @abc.abstractmethod
    async def close(self) -> None: ...

    # Ingest and deletion
    @abc.abstractmethod
    async def store(
        self, instance: NewInstance, *, overwrite: bool, written: StartedCall[Any] | None = None
    ) -> StoreResult:
        """Index a new instance. ``written``, when given, is the write of the instance's file,
        under way or deferred (raising if it failed): the commit waits for its end, so the index
        never points at a file a crash could take away, and the rows may be written meanwhile."""

    @abc.abstractmethod
    async def delete(self, public_id: str, level: Level) -> DeleteResult | None: ...

    @abc.abstractmethod
    async def set_main_tags(
        self, instance: str, tags: dict[Level, dict[str, str]], identifiers: dict[Level, dict[str, str]]
    ) -> None:
        """Replace the main tags and identifiers of an instance and of its ancestors, each level
        with its own (a study also keeps the patient's); nothing if the instance is gone."""

    # Browsing
    @abc.abstractmethod
    async def resource(self, public_id: str, level: Level | None = None) -> ResourceRecord | None: ...

    @abc.abstractmethod
    async def resources(self, public_ids: list[str]) -> list[ResourceRecord]: ...

    @abc.abstractmethod
    async def list_ids(self, level: Level, since: int = 0, limit: int | None = None) -> list[str]:
        """The IDs of a level in the order they were created, from the ``since``-th on, at most
        ``limit`` of them (None: all of them)."""

    @abc.abstractmethod
    async def series_status(self, public_id: str) -> str:
        """Unknown, Complete, Missing or Inconsistent, from the expected count and the instances' indexes."""

    @abc.abstractmethod
    async def descendants(self, public_id: str, level: Level, *, of: Level | None = None) -> list[str]:
        """IDs of the descendants of ``public_id`` at ``level`` (itself if same level); with
        ``of``, none unless ``public_id`` is a resource of that level."""

    @abc.abstractmethod
    async def level_of(self, public_id: str) -> Level | None: ...

    @abc.abstractmethod
    async def all_tags_of_level(self, level: Level) -> list[tuple[str, dict[str, str]]]:
        """Every resource of a level with its own and its ancestors' main tags (for find); below
        the patient level, the patient tags are those its study keeps."""

    @abc.abstractmethod
    async def lookup_identifier(self, value: str) -> list[tuple[str, Level]]: ...

    @abc.abstractmethod
    async def lookup_identifier_at(self, level: Level, tag: str, value: str) -> list[str]:
        """Resources of ``level`` whose normalized identifier ``tag`` (`gggg,eeee`) is ``value``."""

    @abc.abstractmethod
    async def descendant_summaries(self, public_ids: Sequence[str], level: Level) -> dict[str, DescendantSummary]:
        """The summary of each of ``public_ids`` (resources of ``level``, above instances) that exists."""

    # Attachments and metadata
    @abc.abstractmethod
    async def attachments(self, public_id: str) -> dict[int, Attachment]: ...

    async def dicom_attachment(self, public_id: str) -> Attachment | None:
        return (await self.attachments(public_id)).get(ATTACHMENT_DICOM)

    @abc.abstractmethod
    async def dicom_attachments(self, public_ids: Sequence[str]) -> dict[str, Attachment]:
        """The DICOM file of each of these instances that has one (a send's next files, in one
        round trip instead of one per instance)."""

    @abc.abstractmethod
    async def delete_attachment(self, public_id: str, content_type: int) -> str | None: ...

    @abc.abstractmethod
    async def set_attachment(self, public_id: str, attachment: Attachment) -> str | None:
        """Add or replace an attachment; the UUID of the file it replaced, if any.

        Error 17 when the resource no longer exists (deleted since the caller looked it
        up): the caller then still owns the new file and must remove it.
        """

    def enable_file_recovery(self) -> Callable[[list[str]], None] | None:
        """Let the stores whose files have journaled names commit without flushing the index,
        when this backend can (see SqliteIndex); the journal to give the file store, or None."""
        return None

    async def journaled_names(self) -> list[str]:
        """The journaled names no store's commit took since they were journaled."""
        return []

    async def forget_journaled_names(self) -> None:
        """Empty the journal, durably, once the stores of a crashed run are indexed again."""
        return None  # nothing journaled without enable_file_recovery

    @abc.abstractmethod
    async def known_attachments(self, uuids: Collection[str]) -> set[str]:
        """Those of ``uuids`` that an attachment uses (the storage sweep asks a few hundred at a time)."""

    @abc.abstractmethod
    async def set_metadata(self, public_id: str, name: str, value: str) -> None: ...

    @abc.abstractmethod
    async def delete_metadata(self, public_id: str, name: str) -> bool: ...

    @abc.abstractmethod
    async def is_protected(self, public_id: str) -> bool: ...

    @abc.abstractmethod
    async def set_protected(self, public_id: str, protected: bool) -> None: ...

    # Changes
    @abc.abstractmethod
    async def log_change(self, change_type: str, public_id: str, level: Level, date: str) -> None: ...

    @abc.abstractmethod
    async def changes(self, since: int, limit: int) -> tuple[list[Change], bool]: ...

    @abc.abstractmethod
    async def last_change(self) -> Change | None: ...

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The highest sequence number ever given to a change, even one since removed (0: none yet)."""

    @abc.abstractmethod
    async def clear_changes(self) -> None: ...

    # Statistics
    @abc.abstractmethod
    async def statistics(self) -> dict[str, int]: ...

    @abc.abstractmethod
    async def resource_statistics(self, public_id: str, level: Level) -> dict[str, int]: ...

    # Global properties (jobs registry, settings changed at run time)
    @abc.abstractmethod
    async def get_property(self, name: str) -> str | None: ...

    @abc.abstractmethod
    async def set_property(self, name: str, value: str) -> None: ...

    # Saved jobs (SaveJobs): one JSON text per job ID
    @abc.abstractmethod
    async def saved_jobs(self) -> dict[str, str]: ...

    @abc.abstractmethod
    async def save_jobs(self, changed: dict[str, str], removed: Collection[str], *, clear: bool = False) -> None:
        """Upsert ``changed`` and delete ``removed`` in one transaction (``clear`` first forgets every job)."""

    # Cluster jobs (MemberId or a shared index): the jobs table is the queue. ``member`` is the
    # incarnation that holds leases; ``ttl_ms`` a lease's length; ``data`` the job's JSON form.
    @abc.abstractmethod
    async def insert_job(
        self, job_id: str, data: str, *, state: str, priority: int, owner: str | None, ttl_ms: int
    ) -> None:
        """A new row, last of its priority; ``owner`` pins it to one member (with a lease)."""

    @abc.abstractmethod
    async def claim_job(self, member: str, ttl_ms: int) -> ClaimedJob | None:
        """Take the next Pending row (highest priority, then first queued) with a lease: Running, owned."""

    @abc.abstractmethod
    async def renew_job_leases(self, member: str, ttl_ms: int) -> list[JobLease]:
        """Extend the leases of every row the member holds (and its heartbeat); their commands."""

    @abc.abstractmethod
    async def reap_job_leases(self, member_max_age_ms: int) -> int:
        """Free the rows whose lease expired, forget silent members; how many rows were freed."""

    @abc.abstractmethod
    async def release_member_jobs(self, member: str) -> None:
        """Give back every row a member holds (it stops): Running and Retry ones become Pending."""

    @abc.abstractmethod
    async def release_owned_job(self, job_id: str, member: str, generation: int) -> bool:
        """Give back one row the member holds under that claim (``generation``); False if it no longer does."""

    @abc.abstractmethod
    async def write_owned_job(
        self,
        job_id: str,
        member: str,
        generation: int,
        data: str,
        *,
        state: str,
        owner_after: str | None,
        ttl_ms: int,
        requeue: bool = False,
    ) -> bool:
        """The owner's fenced write; False (nothing written) when the lease is no longer its own.

        The command waiting in the row is consumed when ``state`` carries it out (an end, or
        Paused for a pause); otherwise it stays for whoever runs the job next."""

    @abc.abstractmethod
    async def replace_job(
        self,
        row: JobRow,
        data: str,
        *,
        state: str,
        priority: int,
        requeue: bool = False,
    ) -> bool:
        """A user action on ``row`` as it was read: False (nothing written) if it changed since."""

    @abc.abstractmethod
    async def set_job_priority(self, job_id: str, priority: int) -> bool:
        """A new priority for a job that has not ended, whoever holds it; False if there is none."""

    @abc.abstractmethod
    async def set_job_command(self, job_id: str, command: str, *, tell_owner: str | None = None) -> str | None:
        """Ask the member that holds the row to pause or cancel it; that member, or None if nobody holds it.

        With ``tell_owner``, an index that carries messages (:meth:`notifications`) sends that
        text to the member in the same transaction: it arrives once the command is committed."""

    @abc.abstractmethod
    async def job_commands(self, member: str) -> list[tuple[str, str]]:
        """(job ID, command) of the rows the member holds that wait for a command."""

    @abc.abstractmethod
    async def job_row(self, job_id: str) -> JobRow | None: ...

    @abc.abstractmethod
    async def job_rows(self) -> list[JobRow]:
        """Every row, by ID."""

    @abc.abstractmethod
    async def job_ids(self, state: str | None = None) -> list[str]:
        """The IDs of every row by ID, or of those of one state in claim order (the rows' data unread)."""

    @abc.abstractmethod
    async def job_counts(self) -> dict[str, int]:
        """The number of rows in each state."""

    @abc.abstractmethod
    async def trim_job_history(self, keep: int) -> list[str]:
        """Delete the ended rows but the ``keep`` that ended last; the data of those deleted."""

    @abc.abstractmethod
    async def delete_ended_job(self, job_id: str) -> str | None:
        """Delete an ended row; its data, or None if there is no such ended row."""

    @abc.abstractmethod
    async def register_member(self, member: str, pid: int) -> None: ...

    @abc.abstractmethod
    async def unregister_member(self, member: str) -> None: ...

    @abc.abstractmethod
    async def live_members(self, max_age_ms: int) -> list[str]:
        """The members whose heartbeat is at most ``max_age_ms`` old."""

    # Messages between the processes sharing the index
    def notifications(self) -> Notifications | None:
        """The database's own messages between the processes that share it; None where it has none."""
        return None
