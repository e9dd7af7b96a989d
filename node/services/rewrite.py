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
from collections.abc import Iterable
from typing import Any, Self

import trio

from ..dicom.ids import Level, OrthancIds, parse_level
from ..dicom.parse import parse_instance
from ..dicom.rewrite import ModifiedFile, UidMap, modify_file
from ..dicom.rewrite_plan import ModificationPlan, plan_from_json
from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..storage.index import Index
from .bundle import ServiceBundle
from .ingest import Ingest, Origin, PreparedInstance
from .transcoding import transcode_in_thread, transcoded_or_original

# Global property holding the last N of `Anonymized<N>` (kept in the database, as Orthanc does).
ANONYMIZATION_SEQUENCE = "AnonymizationSequence"
_sequence_lock = trio.Lock()
# An instance deleted while a job runs: counted as failed, not fatal to the job.
_VANISHED = (ErrorCode.UNKNOWN_RESOURCE, ErrorCode.INEXISTENT_FILE)


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
    """Every instance below these resources (any level, unknown one: error 17), each listed once."""
    found: dict[str, None] = {}
    for public_id in resources:
        level = await services.index.level_of(public_id)
        if level is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        found.update(dict.fromkeys(await services.index.descendants(public_id, Level.INSTANCE)))
    return list(found)


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

    @abc.abstractmethod
    def rewrite(self, data: bytes, uids: UidMap) -> ModifiedFile:
        """The new file of one instance; runs in a worker thread, so it only reads ``self``."""

    async def stored(self, services: ServiceBundle, result: ModifiedFile, ids: OrthancIds) -> None:
        """Hook run once an instance is stored (shielded from cancellation): record what was created."""
        return None  # optional hook

    def instance_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[str, str]:
        """Metadata stored with the new instance (``ids``), in the same transaction; runs in a worker thread."""
        return {}

    @abc.abstractmethod
    def content(self) -> dict[str, Any]:
        """The keys that the job adds to the Content of every instance-set job."""

    def transcode_target(self) -> str | None:
        """The transfer syntax the new files are written in; None: the source's."""
        return None

    def _rewrite_and_prepare(self, ingest: Ingest, data: bytes, quality: int) -> tuple[ModifiedFile, PreparedInstance]:
        """The new file, transcoded if asked (kept in its syntax if it cannot be), parsed and
        written, ready to index: one trip to a worker thread."""
        result = self.rewrite(data, self.uid_map)
        target = self.transcode_target()
        if target is not None:
            result = ModifiedFile(transcoded_or_original(result.data, target, quality), result.source_ids)
        parsed = parse_instance(result.data)
        return result, ingest.prepare(parsed, self.origin, self.instance_metadata(result, parsed.ids))

    async def rewrite_and_store(self, services: ServiceBundle, instance: str) -> bool:
        """Rewrite and store one instance; False if it vanished meanwhile.

        Reading may be interrupted (nothing changed yet). Rewriting, storing and recording
        what was stored are shielded, so a pause never leaves a written file unindexed.

        The step may still run twice: a job restored after a crash redoes the steps done
        since its progress was last saved. The rewrite gives the same file again (see
        :class:`UidMap`), which is then already stored: that counts as done. Orthanc refuses
        any instance already stored (error 2018); here only a different file stored under
        the same identifiers is refused.
        """
        try:
            data = await services.resources.instance_file(instance)
        except OrthancError as error:
            if error.code in _VANISHED:
                return False
            raise
        with trio.CancelScope(shield=True):
            quality = services.transcoding.lossy_quality
            result, prepared = await offload(self._rewrite_and_prepare, services.ingest, data, quality)
            stored = await services.ingest.commit(prepared)
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
        await self._record_provenance(services, result.source_ids, ids)
        for level, public_id in zip(Level, ids, strict=True):
            self.created[level].add(public_id)
        if self.target is None and self.level is not None:
            self.target = (ids[self.level], ids[Level.PATIENT])

    def instance_metadata(self, result: ModifiedFile, ids: OrthancIds) -> dict[str, str]:
        """`ModifiedFrom`/`AnonymizedFrom` of the new instance: the ID of its source, when it got a new one."""
        source = result.source_ids[Level.INSTANCE]
        return {self.metadata_name: source} if source != ids[Level.INSTANCE] else {}

    async def _record_provenance(self, services: ServiceBundle, sources: OrthancIds, created: OrthancIds) -> None:
        """`ModifiedFrom`/`AnonymizedFrom` on each new parent, once per job; the instance has its own."""
        for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
            source, public_id = sources[level], created[level]
            if source != public_id and public_id not in self._with_provenance:
                await services.index.set_metadata(public_id, self.metadata_name, source)
                self._with_provenance.add(public_id)

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
