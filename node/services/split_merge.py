"""Split and merge of studies: moving instances to another study.

Both are instance rewrites (:class:`~node.services.rewrite.InstanceRewrite`) whose
rule is a :class:`~node.dicom.rewrite.Reassignment`: module tags removed and
replaced, one new SeriesInstanceUID per source series, a new SOPInstanceUID per
instance. A split moves instances of a study to a new study (the user may change
patient and study module tags); a merge moves instances into an existing study,
whose patient and study module tags they take. Requests are checked here, in
Orthanc's order, before the job is submitted; the job then only rewrites and stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Self

from pydicom.uid import generate_uid

from ..body_fields import boolean, json_object, string, string_list
from ..dicom.dictionary import is_private_group, private_name
from ..dicom.ids import Level, OrthancIds
from ..dicom.modules import MODULE_TAGS
from ..dicom.rewrite import ModifiedFile, Reassignment, UidMap, reassign_file
from ..dicom.tag_numbers import SERIES_INSTANCE_UID, STUDY_INSTANCE_UID
from ..dicom.tags import format_tag, parse_tag, tag_name
from ..errors import ErrorCode, OrthancError
from .bundle import ServiceBundle
from .ingest import Origin
from .rewrite import InstanceRewrite

# The tags that a merge copies from the target study, and the only ones a split may change.
STUDY_MODULES = MODULE_TAGS[Level.PATIENT] | MODULE_TAGS[Level.STUDY]
_SPLIT_CHANGEABLE = STUDY_MODULES - {STUDY_INSTANCE_UID, SERIES_INSTANCE_UID}


class StudyMove(InstanceRewrite):
    """What split and merge share: a :class:`Reassignment` applied to every instance."""

    def __init__(self, reassignment: Reassignment, origin: Origin, keep_source: bool) -> None:
        super().__init__(origin, keep_source)
        self.reassignment = reassignment

    def rewrite(self, data: bytes, uids: UidMap) -> ModifiedFile:
        return reassign_file(data, self.reassignment, uids)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "Reassignment": self.reassignment.to_json(), "KeepSource": self.keep_source}

    @staticmethod
    def _saved(data: dict[str, Any]) -> tuple[Reassignment, Origin, bool]:
        return Reassignment.from_json(data["Reassignment"]), Origin(**data["Origin"]), bool(data["KeepSource"])


class StudySplit(StudyMove):
    """SplitStudy jobs: the new study's UID is chosen at submission, its Orthanc ID known once an instance is stored."""

    def __init__(self, reassignment: Reassignment, origin: Origin, keep_source: bool) -> None:
        super().__init__(reassignment, origin, keep_source)
        self.target_uid = reassignment.replacements[STUDY_INSTANCE_UID]
        self.target_study: str | None = None

    async def stored(self, services: ServiceBundle, result: ModifiedFile, ids: OrthancIds) -> None:
        if self.target_study is None:
            self.target_study = ids[Level.STUDY]

    def content(self) -> dict[str, Any]:
        content: dict[str, Any] = {"TargetStudyUID": self.target_uid}
        if self.target_study is not None:
            content["TargetStudy"] = self.target_study
        return content

    def reset(self) -> None:
        super().reset()
        self.target_study = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "TargetStudy": self.target_study}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        split = cls(*cls._saved(data))
        split.restore_rewrite(data)
        split.target_study = data.get("TargetStudy")
        return split


class StudyMerge(StudyMove):
    """MergeStudy jobs: the target study and the tags copied from it are fixed at submission."""

    def __init__(self, reassignment: Reassignment, target_study: str, origin: Origin, keep_source: bool) -> None:
        super().__init__(reassignment, origin, keep_source)
        self.target_study = target_study

    def content(self) -> dict[str, Any]:
        return {"TargetStudy": self.target_study}

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "TargetStudy": self.target_study}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        reassignment, origin, keep_source = cls._saved(data)
        merge = cls(reassignment, str(data["TargetStudy"]), origin, keep_source)
        merge.restore_rewrite(data)
        return merge


# -- requests ------------------------------------------------------------------------


def _strings(body: Any, field: str, *, required: bool) -> list[str]:
    if isinstance(body, dict) and field not in body and not required:
        return []
    value = body.get(field) if isinstance(body, dict) else None
    return string_list(value, ErrorCode.BAD_FILE_FORMAT, f"List of strings expected in field: {field}")


def _keep_source(body: Any) -> bool:
    """KeepSource defaults to false for split and merge (unlike /modify)."""
    if not isinstance(body, dict) or "KeepSource" not in body:
        return False
    return boolean(body["KeepSource"], ErrorCode.BAD_FILE_FORMAT, "Boolean value expected in field: KeepSource")


def _name(tag: int) -> str:
    private = private_name(tag, None) if is_private_group(tag >> 16) else None
    return private or tag_name(tag)


def _changeable(name: str) -> int:
    tag = int(parse_tag(name))
    if tag not in _SPLIT_CHANGEABLE:
        raise OrthancError(
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            "Cannot modify the following tag while splitting a study (not in the patient/study modules): "
            f"{_name(tag)} ({format_tag(tag)})",
        )
    return tag


def _split_reassignment(body: dict[str, Any]) -> Reassignment:
    """The user's Remove then Replace (patient and study modules only), and the new StudyInstanceUID."""
    removals = string_list(body.get("Remove", []), ErrorCode.BAD_FILE_FORMAT)
    removed = frozenset(_changeable(name) for name in removals)
    replacements = json_object(body.get("Replace", {}), ErrorCode.BAD_FILE_FORMAT)
    replaced: dict[int, str] = {}
    for name, value in replacements.items():
        replaced[_changeable(name)] = string(value, ErrorCode.BAD_FILE_FORMAT)
    replaced[STUDY_INSTANCE_UID] = generate_uid()
    return Reassignment(removed, replaced)


def _unique(instances: Iterable[str]) -> list[str]:
    """Each instance once, in the order of the request (a series and one of its instances may both be named)."""
    return list(dict.fromkeys(instances))


async def _study_of(services: ServiceBundle, public_id: str, level: Level) -> str | None:
    """The study above a series or an instance (None if ``public_id`` is not at ``level``)."""
    record = await services.index.resource(public_id)
    if record is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    if record.level != level:
        return None
    if level == Level.INSTANCE and record.parent is not None:
        record = await services.index.resource(record.parent)
    return record.parent if record is not None else None


async def prepare_split(
    services: ServiceBundle, study: str, body: dict[str, Any], origin: Origin
) -> tuple[StudySplit, list[str]]:
    """Check a /studies/{id}/split request; the split and the instances it moves."""
    if await services.index.level_of(study) != Level.STUDY:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot split unknown study {study}")
    series = _strings(body, "Series", required=False)
    instances = _strings(body, "Instances", required=False)
    if not series and not instances:
        raise OrthancError(ErrorCode.BAD_REQUEST, 'Both the "Series" and the "Instances" fields are missing')
    moved: list[str] = []
    for level, named in ((Level.SERIES, series), (Level.INSTANCE, instances)):
        for public_id in named:
            if await _study_of(services, public_id, level) != study:
                raise OrthancError(
                    ErrorCode.UNKNOWN_RESOURCE,
                    f"This {level.title.lower()} does not belong to the study to be split: {public_id}",
                )
            moved.extend(await services.index.descendants(public_id, Level.INSTANCE))
    keep_source = _keep_source(body)
    split = StudySplit(_split_reassignment(body), origin, keep_source)
    return split, _unique(moved)


async def _merged_instances(services: ServiceBundle, target: str, source: str) -> list[str]:
    """The instances of one source of a merge, refused if it is the target or already in it."""
    level = await services.index.level_of(source)
    if level is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot find this resource: {source}")
    if level == Level.PATIENT:
        raise OrthancError(
            ErrorCode.UNKNOWN_RESOURCE,
            f"This resource is neither a study, nor a series, nor an instance: {source} is a Patient",
        )
    if level == Level.STUDY and source == target:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot merge a study into the same study: {source}")
    if level != Level.STUDY and await _study_of(services, source, level) == target:
        raise OrthancError(
            ErrorCode.UNKNOWN_RESOURCE,
            f"Cannot merge {level.title.lower()} {source} into its parent study {target}",
        )
    return await services.index.descendants(source, Level.INSTANCE)


async def prepare_merge(
    services: ServiceBundle, target: str, body: Any, origin: Origin
) -> tuple[StudyMerge, list[str]]:
    """Check a /studies/{id}/merge request; the merge and the instances it moves.

    The tags to copy are read from one instance of the target now, so that a job
    resumed later gives every instance the same values.
    """
    if await services.index.level_of(target) != Level.STUDY:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot merge into an unknown study: {target}")
    moved: list[str] = []
    for source in _strings(body, "Resources", required=True):
        moved.extend(await _merged_instances(services, target, source))
    keep_source = _keep_source(body)
    model = (await services.index.descendants(target, Level.INSTANCE))[0]
    reassignment = Reassignment.copying(await services.resources.instance_dataset(model), STUDY_MODULES)
    return StudyMerge(reassignment, target, origin, keep_source), _unique(moved)
