"""Applying a rewrite to stored instances: the one code path of the instance routes and the jobs.

:class:`InstanceRewrite` is the per-instance loop that every job rewriting stored
instances shares (modify, anonymize, split and merge of studies): read, rewrite in a
thread with the job's UID map, store, and at the end delete the sources. A subclass
says how an instance is rewritten and what its job's Content adds; it keeps
everything it needs between two instances as plain JSON, so that a job type only
wraps it: one instance per step, then the deletion of the sources.
:class:`ResourceModification` is the subclass of the ResourceModification jobs.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Self

import trio

from ..dicom.ids import Level, OrthancIds, parse_level
from ..dicom.parse import parse_instance
from ..dicom.rewrite import ModifiedFile, UidMap, modify_file
from ..dicom.rewrite_plan import ModificationPlan, plan_from_json
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.files import FileStore
from ..storage.index import Index
from ..storage.index.base import COMPRESSION_ZLIB, Attachment
from .bundle import ServiceBundle
from .ingest import Origin, PreparedInstance
from .transcoding import transcode_in_thread, transcoded_or_original

# Global property holding the last N of `Anonymized<N>` (kept in the database, as Orthanc does).
ANONYMIZATION_SEQUENCE = "AnonymizationSequence"
_sequence_lock = trio.Lock()
# An instance deleted while a job runs: counted as failed, not fatal to the job.
_VANISHED = (ErrorCode.UNKNOWN_RESOURCE, ErrorCode.INEXISTENT_FILE)
_PARENT_LEVELS = (Level.PATIENT, Level.STUDY, Level.SERIES)
INLINE_LIMIT = 256 * 1024  # bytes: a file up to this size is rewritten on the event loop
SOURCES_BATCH = 100  # instances whose files one index query looks up, ahead of their steps


async def complete_plan(index: Index, plan: ModificationPlan) -> ModificationPlan:
    """Give an anonymization its `Anonymized<N>` PatientName: one N per request, not per instance."""
    if not plan.needs_patient_name:
        return plan
    async with _sequence_lock:  # read-increment-write must not interleave between requests
        number = int(await index.get_property(ANONYMIZATION_SEQUENCE) or 0) + 1
        await index.set_property(ANONYMIZATION_SEQUENCE, str(number))
    return plan.with_patient_name(f"Anonymized{number}")


def _modified_and_transcoded(data: bytes, plan: ModificationPlan, quality: int) -> bytes:
    """The modification, then the plan's transcoding: an instance that cannot be transcoded is an error here."""
    result = modify_file(data, plan, UidMap()).data
    return result if plan.transcode is None else transcode_in_thread(result, plan.transcode, quality=quality).data


async def modified_instance(services: ServiceBundle, public_id: str, plan: ModificationPlan) -> bytes:
    """The modified file of one instance, not stored (POST /instances/{id}/modify|anonymize)."""
    data = await services.resources.instance_file(public_id)
    return await offload(_modified_and_transcoded, data, plan, services.transcoding.lossy_quality)


async def instances_of(services: ServiceBundle, resources: Iterable[str]) -> list[str]:
    """Every instance below these resources (any level, unknown one: error 17), each listed once.

    One index query per resource: a stored resource always has an instance below it (or is
    one), since a parent goes with its last instance, so finding none means it is unknown.
    """
    found: dict[str, None] = {}
    for public_id in resources:
        instances = await services.index.descendants(public_id, Level.INSTANCE)
        if not instances:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        found.update(dict.fromkeys(instances))
    return list(found)


async def instances_below(services: ServiceBundle, public_id: str, level: Level) -> list[str]:
    """Every instance below one resource of ``level`` (unknown, or of another level: error 17),
    found by one query, its level checked there."""
    instances = await services.index.descendants(public_id, Level.INSTANCE, of=level)
    if not instances:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
    return instances


def _resource(public_id: str, level: Level) -> dict[str, str]:
    return {"ID": public_id, "Path": f"/{level.plural}/{public_id}", "Type": level.title}


class InstanceRewrite(abc.ABC):
    """Rewrites instances one at a time and stores the results, with identifiers consistent across all.

    ``keep_source`` false: :meth:`delete_sources` deletes the originals at the end.
    """

    def __init__(self, origin: Origin, keep_source: bool) -> None:
        self.origin = origin
        self.keep_source = keep_source
        self.uid_map = UidMap()
        # Where the files of the next instances are (None: gone), looked up a batch at a time. Not
        # saved: a reloaded job looks them up again.
        self._sources: dict[str, Attachment | None] = {}

    @abc.abstractmethod
    def rewrite(self, data: bytes, uids: UidMap) -> ModifiedFile:
        """The new file of one instance; may run in a worker thread, so it only reads ``self``."""

    async def stored(self, services: ServiceBundle, result: ModifiedFile, ids: OrthancIds) -> None:
        """Hook run once an instance is stored (shielded from cancellation): record what was created."""
        return None  # optional hook

    def instance_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[str, str]:
        """Metadata stored with the new instance (``ids``), in the same transaction."""
        return {}

    def parent_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[Level, dict[str, str]]:
        """Metadata set on the parents of the new instance, in the same transaction."""
        return {}

    @abc.abstractmethod
    def content(self) -> dict[str, Any]:
        """The keys that the job adds to the Content of every instance-set job."""

    def transcode_target(self) -> str | None:
        """The transfer syntax the new files are written in; None: the source's."""
        return None

    def _read_and_rewrite(self, files: FileStore, source: Attachment, quality: int) -> ModifiedFile | None:
        """The stored file read, rewritten and transcoded if asked (kept in its syntax if it cannot
        be); None if it vanished meanwhile (blocking)."""
        try:
            data = files.read(source.uuid, source.compression == COMPRESSION_ZLIB)
        except FileNotFoundError:
            return None
        result = self.rewrite(data, self.uid_map)
        target = self.transcode_target()
        if target is not None:
            result = ModifiedFile(transcoded_or_original(result.data, target, quality), result.source_ids)
        return result

    def _rewrite_and_prepare_blocking(
        self, services: ServiceBundle, source: Attachment
    ) -> tuple[ModifiedFile, PreparedInstance] | None:
        """A large or transcoded file read, rewritten, parsed and the new one written: one trip to
        a worker thread."""
        result = self._read_and_rewrite(services.files, source, services.transcoding.lossy_quality)
        if result is None:
            return None
        return result, services.ingest.prepare(parse_instance(result.data), self.origin)

    async def _rewrite_and_prepare(
        self, services: ServiceBundle, source: Attachment
    ) -> tuple[ModifiedFile, PreparedInstance] | None:
        """The new file written (or being written) and described, ready to index.

        A small file is read, rewritten and parsed on the event loop, and the write of its new
        file deferred to the index thread, which runs it just before the rows that name it
        (see :meth:`rewrite_and_store`): handing that work to a thread of its own would cost
        more than doing it, as a thread waits its turn for the interpreter while the loop is
        busy. Transcoding is CPU-heavy: it always goes to a thread.
        """
        if source.uncompressed_size > INLINE_LIMIT or self.transcode_target() is not None:
            return await offload(self._rewrite_and_prepare_blocking, services, source)
        result = self._read_and_rewrite(services.files, source, services.transcoding.lossy_quality)
        if result is None:
            return None
        return result, await services.ingest.receive(result.data, self.origin, parse_instance, inline=True)

    async def _source(self, services: ServiceBundle, instance: str, upcoming: Sequence[str]) -> Attachment | None:
        """Where the file of ``instance`` is: found with those of the ``upcoming`` instances, in one query."""
        if instance not in self._sources:
            batch = [instance, *(i for i in upcoming[: SOURCES_BATCH - 1] if i != instance)]
            found = await services.index.dicom_attachments(batch)
            self._sources = {public_id: found.get(public_id) for public_id in batch}
        return self._sources.pop(instance)

    async def rewrite_and_store(self, services: ServiceBundle, instance: str, upcoming: Sequence[str] = ()) -> bool:
        """Rewrite and store one instance; False if it vanished meanwhile.

        ``upcoming``: the instances of the next steps, whose files are looked up with this one's.
        A file gone since it was looked up (the instance deleted, or stored again over it) is
        looked up once more.

        One index read (where the file is, for a batch of instances) and one index write (the new instance with its
        metadata and its parents'): looking the file up may be interrupted (nothing changed
        yet); the rest is shielded, so a pause never leaves a written file unindexed.

        The step may still run twice: a job restored after a crash redoes the steps done
        since its progress was last saved. The rewrite gives the same file again (see
        :class:`UidMap`), which is then already stored: that counts as done. Orthanc refuses
        any instance already stored (error 2018); here only a different file stored under
        the same identifiers is refused.
        """
        source = await self._source(services, instance, upcoming)
        if source is None:
            return False
        with trio.CancelScope(shield=True):
            rewritten = await self._rewrite_and_prepare(services, source)
            if rewritten is None:
                again = await services.index.dicom_attachment(instance)
                if again is None or again == source:
                    return False
                rewritten = await self._rewrite_and_prepare(services, again)
            if rewritten is None:
                return False
            result, prepared = rewritten
            ids = prepared.parsed.ids
            prepared.new.metadata.update(self.instance_metadata(result, ids))
            prepared.new.parent_metadata.update(self.parent_metadata(result, ids))
            # The write stays on the index thread even when another job's store keeps it busy: a
            # job's file is small, and a worker thread started per file cost the event loop more
            # (its start, its wake-ups, their turns at the interpreter) than the overlap saved.
            stored = await services.ingest.commit(prepared, overlap=False)
            if stored.status != "Success" and not await self._stored_before(services, result, stored.ids):
                raise OrthancError(
                    ErrorCode.CANNOT_STORE_INSTANCE, f"Error while storing a modified instance {instance}"
                )
            await self.stored(services, result, stored.ids)
        return True

    @staticmethod
    async def _stored_before(services: ServiceBundle, result: ModifiedFile, ids: OrthancIds) -> bool:
        """Whether the instance already stored under these identifiers is this very file."""
        try:
            return await services.resources.instance_file(ids[Level.INSTANCE]) == result.data
        except OrthancError as error:
            if error.code in _VANISHED:  # deleted meanwhile: not this job's copy
                return False
            raise

    async def delete_sources(self, services: ServiceBundle, instances: Iterable[str]) -> None:
        """KeepSource false: delete the originals once every new instance is stored.

        One already gone is skipped: deleted by someone else, or by this step itself before
        a crash made the restored job redo it.
        """
        if self.keep_source:
            return
        for instance in instances:
            try:
                await services.resources.delete(instance, Level.INSTANCE)
            except OrthancError as error:
                if error.code not in _VANISHED:
                    raise

    def reset(self) -> None:
        """Back to the start (a resubmitted job): new identifiers again, nothing created yet."""
        self.uid_map = UidMap()
        self._sources = {}

    def to_json(self) -> dict[str, Any]:
        return {"Origin": dataclasses.asdict(self.origin), "UidMap": self.uid_map.to_json()}

    @classmethod
    @abc.abstractmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Rebuild what :meth:`to_json` saved (subclasses call :meth:`restore_rewrite` for the base part)."""

    def restore_rewrite(self, data: dict[str, Any]) -> None:
        self.uid_map = UidMap.from_json(data["UidMap"])


class ResourceModification(InstanceRewrite):
    """A modification plan applied to instances (ResourceModification jobs).

    ``level`` is the level of a single-resource route (its Content names the new
    resource there); None for the bulk routes (their Content lists every new resource).
    """

    def __init__(self, plan: ModificationPlan, level: Level | None, origin: Origin) -> None:
        super().__init__(origin, plan.keep_source)
        self.plan = plan
        self.level = level
        self.created: dict[Level, set[str]] = {lv: set() for lv in Level}
        self.target: tuple[str, str] | None = None  # (new resource at ``level``, its patient)
        self._with_provenance: set[str] = set()  # parents already given ModifiedFrom (not saved: redoing is harmless)

    @property
    def metadata_name(self) -> str:
        return "AnonymizedFrom" if self.plan.is_anonymization else "ModifiedFrom"

    def rewrite(self, data: bytes, uids: UidMap) -> ModifiedFile:
        return modify_file(data, self.plan, uids)

    def transcode_target(self) -> str | None:
        return self.plan.transcode

    async def stored(self, services: ServiceBundle, result: ModifiedFile, ids: OrthancIds) -> None:
        for level in _PARENT_LEVELS:
            if result.source_ids[level] != ids[level]:
                self._with_provenance.add(ids[level])
        for level, public_id in zip(Level, ids, strict=True):
            self.created[level].add(public_id)
        if self.target is None and self.level is not None:
            self.target = (ids[self.level], ids[Level.PATIENT])

    def instance_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[str, str]:
        """`ModifiedFrom`/`AnonymizedFrom` of the new instance: the ID of its source, when it got a new one."""
        source = result.source_ids[Level.INSTANCE]
        return {self.metadata_name: source} if source != ids[Level.INSTANCE] else {}

    def parent_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[Level, dict[str, str]]:
        """`ModifiedFrom`/`AnonymizedFrom` of each new parent (one with a new ID), once per job."""
        sources = result.source_ids
        return {
            level: {self.metadata_name: sources[level]}
            for level in _PARENT_LEVELS
            if sources[level] != ids[level] and ids[level] not in self._with_provenance
        }

    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"IsAnonymization": self.plan.is_anonymization}
        if self.plan.transcode is not None:
            content["Transcode"] = self.plan.transcode
        if self.level is None:
            order = (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT)
            content["Resources"] = [_resource(i, lv) for lv in order for i in sorted(self.created[lv])]
        elif self.target is not None:
            resource, patient = self.target
            content.update(_resource(resource, self.level))
            content["PatientID"] = patient
        return content

    def reset(self) -> None:
        super().reset()
        self.created = {lv: set() for lv in Level}
        self.target = None

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "Plan": self.plan.to_json(),
            "Level": None if self.level is None else self.level.title,
            "Created": {lv.title: sorted(ids) for lv, ids in self.created.items()},
            "Target": list(self.target) if self.target else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        level = parse_level(data["Level"]) if data.get("Level") else None
        run = cls(plan_from_json(data["Plan"]), level, Origin(**data["Origin"]))
        run.restore_rewrite(data)
        run.created = {lv: set(data["Created"].get(lv.title, [])) for lv in Level}
        run.target = tuple(data["Target"]) if data.get("Target") else None
        return run
