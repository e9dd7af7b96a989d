"""Rewriting one instance for a job, with identifiers consistent across the whole job.

A :class:`UidMap` gives every original identifier the same new value for the whole
job (so a modified study stays one study, and references between anonymized
instances keep pointing at their targets), derived from a seed saved with the job so
that a resumed job, even one redoing a step, gives the same values. Two kinds of
rewrite share :func:`rewrite_file`: a :class:`ModificationPlan` (modify, anonymize)
and a :class:`Reassignment` (split and merge of studies); :mod:`.part10` encodes the
result. No Trio, no I/O: the service layer reads, stores and keeps the map.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import PYDICOM_ROOT_UID

from ..errors import ErrorCode, OrthancError
from .dictionary import creator_slot, is_creator_slot, is_private_group
from .ids import Level, OrthancIds, hierarchy_ids
from .json_elements import dataset_encodings, empty_element, set_from_json
from .parse import read_dataset
from .part10 import encode_file
from .rewrite_plan import LEVEL_UIDS, Action, ModificationPlan
from .tag_numbers import (
    HIERARCHY_TAGS,
    PATIENT_ID,
    REFERENCED_FRAME_OF_REFERENCE_SEQUENCE,
    REFERENCED_SOP_INSTANCE_UID,
    RT_REFERENCED_STUDY_SEQUENCE,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_INSTANCE_UID,
)
from .tags import element_text, format_tag, identifier, parse_tag, raw_identifier, raw_vr
from .top_level_edit import edit_top_level

_UID_NAMES = {PATIENT_ID: "PatientID", STUDY_INSTANCE_UID: "StudyInstanceUID", SERIES_INSTANCE_UID: "SeriesInstanceUID"}
_SEED_BYTES = 16
_UID_MAX_LENGTH = 64


def _new_seed() -> str:
    return secrets.token_hex(_SEED_BYTES)


@dataclass(frozen=True)
class UidMap:
    """Original identifier -> new one, the same for a whole job, and again when a step is redone.

    New values are derived from the original and a random seed drawn once per job (and
    saved with it), not drawn one by one: an instance rewritten a second time, because
    the node stopped before the job's progress was saved, gets the identifiers it got the
    first time, so storing it again finds it already there instead of adding a copy.
    Being a pure function of its seed, the map can be used from any thread.

    UIDs of every level share one derivation (an RT structure set names its study's UID
    in ReferencedSOPInstanceUID, and must get the study's new UID); UIDs keep pydicom's
    root, as drawn ones did, and PatientIDs are UUIDs, as Orthanc's.
    """

    seed: str = field(default_factory=_new_seed)

    def uid(self, original: str) -> str:
        """pydicom's ``generate_uid(entropy_srcs=[seed, original])``, computed here without its
        checks of a prefix that is constant and its UID object: the same value, a fraction of the cost."""
        digest = hashlib.sha512(f"{self.seed}{original}".encode()).digest()
        return f"{PYDICOM_ROOT_UID}{int.from_bytes(digest, 'big')}"[:_UID_MAX_LENGTH]

    def patient_id(self, original: str) -> str:
        digest = hashlib.sha256(f"{self.seed}\0{original}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def to_json(self) -> dict[str, str]:
        return {"Seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UidMap:
        return cls(str(data["Seed"]))


def _check_level(plan: ModificationPlan) -> None:
    """Identifiers may be replaced, never removed, and only at or below the level modified; a
    patient's modification replaces its PatientID. Checked when the plan is applied (inside the
    job), as Orthanc does."""
    if any(plan.actions.get(tag, (None,))[0] is Action.REMOVE for tag in HIERARCHY_TAGS):
        raise OrthancError(ErrorCode.BAD_REQUEST)
    level = plan.level
    if level == Level.PATIENT:
        if not plan.replaced(PATIENT_ID):
            raise OrthancError(
                ErrorCode.BAD_REQUEST, "When modifying a patient, her PatientID is required to be modified"
            )
        return
    article = "an instance" if level == Level.INSTANCE else f"a {level.title.lower()}"
    for parent_level, tag in ((Level.PATIENT, PATIENT_ID), *LEVEL_UIDS):
        if parent_level < level and plan.replaced(tag):
            raise OrthancError(
                ErrorCode.BAD_REQUEST,
                f"When modifying {article}, the parent {_UID_NAMES[tag]} cannot be manually modified",
            )


def _private_tags_to_keep(plan: ModificationPlan) -> set[int]:
    """Kept private tags, with the creator of their block so that they stay readable."""
    kept = {tag for tag, (action, _) in plan.actions.items() if action is Action.KEEP and is_private_group(tag >> 16)}
    return kept | {creator_slot(tag) for tag in kept if not is_creator_slot(tag)}


def _remove_private(dataset: Dataset, keep: set[int], protected: set[int]) -> None:
    """Delete private elements here and in nested items; ``protected`` subtrees are left alone."""
    for tag in list(dataset.keys()):
        if tag in protected or tag in keep:
            continue
        if is_private_group(tag.group):
            del dataset[tag]
        elif dataset.get_item(tag).VR == "SQ":
            for item in dataset[tag].value:
                _remove_private(item, set(), set())


# Where an RT structure set names its study's UID under ReferencedSOPInstanceUID.
_RT_STUDY_REFERENCE = (REFERENCED_FRAME_OF_REFERENCE_SEQUENCE, RT_REFERENCED_STUDY_SEQUENCE)
_NESTED_LEVELS = {STUDY_INSTANCE_UID: Level.STUDY, SERIES_INSTANCE_UID: Level.SERIES, SOP_INSTANCE_UID: Level.INSTANCE}
Replaced = Mapping[tuple[Level, str], str]  # (level, original UID) -> the request's value


def _uid_level(tag: int, parents: tuple[int, ...]) -> Level:
    """The level whose identifier a UID tag holds: any UID that is no study or series UID
    refers to an instance, but for the study reference of an RT structure set."""
    if tag == REFERENCED_SOP_INSTANCE_UID and parents == _RT_STUDY_REFERENCE:
        return Level.STUDY
    return _NESTED_LEVELS.get(tag, Level.INSTANCE)


def _map_uids(uids: UidMap, element: DataElement, level: Level, replaced: Replaced) -> None:
    """Map each UID of the element: to the value the request gave the identifier of this level
    it names, else through the job's map."""

    def mapped(original: str) -> str:
        return replaced.get((level, original)) or uids.uid(original)

    value = element.value
    if isinstance(value, (list, MultiValue)):
        element.value = [mapped(str(v).rstrip(" \0")) if v else v for v in value]
    elif isinstance(value, str) and value.rstrip(" \0"):
        element.value = mapped(value.rstrip(" \0"))


def _replaced_identifiers(dataset: Dataset, plan: ModificationPlan) -> dict[tuple[Level, str], str]:
    """(Level, original UID) -> value, for the study, series and SOP instance UIDs that the
    request replaces: a sequence naming such an identifier then gets the request's value,
    not a generated one, so that it still points at what it named."""
    replaced = {}
    for level, tag in LEVEL_UIDS:
        action, value = plan.actions.get(tag, (None, None))
        original = dataset.get(tag)
        if action is Action.REPLACE and isinstance(value, str) and original is not None and original.value:
            replaced[(level, str(original.value).rstrip(" \0"))] = value
    return replaced


def _anonymize_nested(item: Dataset, tag: int, plan: ModificationPlan, uids: UidMap) -> bool:
    """The profile's lists and ranges, and PatientID, on one element of a sequence item; True
    when that settles the element (removed, emptied or mapped)."""
    action = plan.actions.get(tag, (None,))[0]
    if action is Action.CLEAR and item[tag].VR == "SQ":
        action = Action.REMOVE  # a sequence to clear is removed inside sequences
    if action is Action.REMOVE or (_in_ranges(tag, plan.remove_ranges) and not plan.kept(tag)):
        del item[tag]
    elif action is Action.CLEAR:
        item.add(empty_element(item[tag]))
    elif tag == PATIENT_ID and plan.map_patient_id:
        item[tag].value = uids.patient_id(str(item[tag].value or "").rstrip(" \0"))
    else:
        return False
    return True


def _anonymize_deep(
    dataset: Dataset, plan: ModificationPlan, uids: UidMap, replaced: Replaced, parents: tuple[int, ...] = ()
) -> None:
    """Anonymization beyond the top level: map UIDs wherever they occur, so that references
    follow their targets, and inside sequences (``parents``: the sequence tags above) apply
    the profile's lists and ranges too and map PatientIDs, as Orthanc does.
    """
    nested = bool(parents)
    for tag in list(dataset.keys()):
        if not nested and (tag in HIERARCHY_TAGS or plan.kept(tag) or plan.replaced(tag)):
            continue  # set by the user, or already mapped by level
        if nested and _anonymize_nested(dataset, tag, plan, uids):
            continue
        element = dataset[tag]
        if element.VR == "SQ":
            for item in element.value:
                _anonymize_deep(item, plan, uids, replaced, (*parents, int(tag)))
        elif tag in plan.uid_tags or (nested and tag in _NESTED_LEVELS):
            _map_uids(uids, element, _uid_level(int(tag), parents), replaced)


def _map_identifier(dataset: Dataset, tag: int, uids: UidMap) -> None:
    """Give a top-level identifier (study, series, SOP instance UID) its new value for the job.

    A plain single UID is read from its bytes and its new value set without pydicom's checks
    (the map makes valid UIDs): decoding the old value and checking the new one cost more
    than the rest of the mapping. Anything else goes through pydicom, with the same result.
    """
    element = dataset.get_item(tag)
    if element is None:
        return
    if isinstance(element, RawDataElement) and raw_vr(element) == "UI":
        original = raw_identifier(element)
        if isinstance(original, str) and "\\" not in original:
            dataset.add(DataElement(tag, "UI", uids.uid(original), validation_mode=pydicom_config.IGNORE))
            return
    dataset[tag].value = uids.uid(str(dataset[tag].value).rstrip(" \0"))


def _in_ranges(tag: int, ranges: tuple[tuple[int, int, int, int], ...]) -> bool:
    group, elem = tag >> 16, tag & 0xFFFF
    return any(g0 <= group <= g1 and e0 <= elem <= e1 for g0, g1, e0, e1 in ranges)


def apply_plan(dataset: Dataset, plan: ModificationPlan, uids: UidMap) -> None:
    """Modify ``dataset`` in place: checks, private tags, profile and user lists, identifiers, paths."""
    _check_level(plan)
    encodings = dataset_encodings(dataset)
    replaced_identifiers = _replaced_identifiers(dataset, plan) if plan.is_anonymization else {}
    protected = {tag for tag, (action, _) in plan.actions.items() if action in (Action.KEEP, Action.REPLACE)}
    if plan.remove_private_tags:
        _remove_private(dataset, _private_tags_to_keep(plan), protected)
    for tag, (action, _) in plan.actions.items():
        if action is Action.CLEAR and tag in dataset:
            dataset.add(empty_element(dataset[tag]))
        elif action is Action.REMOVE and tag in dataset:
            del dataset[tag]
    if plan.remove_ranges:
        for tag in [t for t in list(dataset.keys()) if _in_ranges(t, plan.remove_ranges) and not plan.kept(t)]:
            del dataset[tag]
    for tag, (action, value) in plan.actions.items():
        if action is Action.REPLACE:
            set_from_json(dataset, tag, value, encodings, plan.private_creator)
    if plan.map_patient_id:
        dataset.PatientID = uids.patient_id(identifier(dataset, "PatientID") or "")
    for level, tag in LEVEL_UIDS:
        if plan.level <= level and not plan.replaced(tag) and not plan.kept(tag):
            _map_identifier(dataset, tag, uids)
    if plan.is_anonymization:
        _anonymize_deep(dataset, plan, uids, replaced_identifiers)
    for path in plan.path_removals:
        for item in path.items(dataset):
            if path.tag in item:
                del item[path.tag]
    for path, value in plan.path_replacements:
        for item in path.items(dataset):
            set_from_json(item, path.tag, value, encodings, plan.private_creator)


@dataclass
class ModifiedFile:
    data: bytes
    source_ids: OrthancIds  # of the original


def _orthanc_ids(dataset: Dataset) -> OrthancIds:
    keywords = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    return hierarchy_ids(*(identifier(dataset, k) or "" for k in keywords))


# Read by every rewrite besides what it changes: the source's identifiers and the SOP class of the meta header.
ALWAYS_READ = frozenset([PATIENT_ID, SOP_CLASS_UID, *HIERARCHY_TAGS])


def rewrite_file(data: bytes, edit: Callable[[Dataset], None], touched: Collection[int] | None = None) -> ModifiedFile:
    """Read a stored DICOM file, ``edit`` its dataset in place and encode the result (CPU work: run it in a thread).

    ``touched``: the only top-level elements ``edit`` reads or changes (None: any, and nested
    ones). The file is then edited in place where :func:`.top_level_edit.edit_top_level` can,
    with the same result.
    """
    if touched is not None:
        sources: list[OrthancIds] = []

        def edit_with_sources(dataset: Dataset) -> None:
            sources.append(_orthanc_ids(dataset))
            edit(dataset)

        edited = edit_top_level(data, ALWAYS_READ | set(touched), edit_with_sources)
        if edited is not None:
            return ModifiedFile(edited, sources[0])
    dataset = read_dataset(data)
    source_ids = _orthanc_ids(dataset)
    edit(dataset)
    for tag in [t for t in list(dataset.keys()) if t.element == 0 and t.group >= 0x0008]:
        del dataset[tag]  # group lengths would be stale
    return ModifiedFile(encode_file(dataset), source_ids)


def _top_level_tags(plan: ModificationPlan) -> set[int] | None:
    """The top-level elements :func:`apply_plan` reads or changes besides those of every rewrite;
    None when it may reach further (anonymization, private tags, ranges, paths, the character set)."""
    if (
        plan.is_anonymization
        or plan.remove_private_tags
        or plan.remove_ranges
        or plan.path_removals
        or plan.path_replacements
        or plan.map_patient_id
        or SPECIFIC_CHARACTER_SET in plan.actions
    ):
        return None
    slots = {creator_slot(tag) for tag in plan.actions if is_private_group(tag >> 16) and not is_creator_slot(tag)}
    return {*plan.actions, *slots}


def modify_file(data: bytes, plan: ModificationPlan, uids: UidMap) -> ModifiedFile:
    """Apply ``plan`` to a stored DICOM file (modify, anonymize)."""
    return rewrite_file(data, lambda dataset: apply_plan(dataset, plan, uids), _top_level_tags(plan))


@dataclass(frozen=True)
class Reassignment:
    """Split and merge of studies: what moving an instance to another study changes in it.

    ``removals`` are deleted first, then ``replacements`` (tag -> text) are set; the
    StudyInstanceUID of the destination is among the replacements. The instance then
    gets a SeriesInstanceUID mapped from its original one (one new series per source
    series) and a new SOPInstanceUID, both through the job's :class:`UidMap`.
    """

    removals: frozenset[int]
    replacements: Mapping[int, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "Remove": [format_tag(tag) for tag in sorted(self.removals)],
            "Replace": {format_tag(tag): value for tag, value in sorted(self.replacements.items())},
        }

    @classmethod
    def copying(cls, source: Dataset, tags: Collection[int]) -> Reassignment:
        """Give moved instances the ``tags`` of ``source``: those with a text value there are
        copied, the others (absent, sequences, binary) are removed (merge of studies)."""
        replacements: dict[int, str] = {}
        for tag in tags:
            text = element_text(source[tag]) if tag in source else None
            if text is not None:
                replacements[tag] = text
        return cls(frozenset(tags) - replacements.keys(), replacements)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reassignment:
        return cls(
            frozenset(int(parse_tag(t)) for t in data["Remove"]),
            {int(parse_tag(t)): str(v) for t, v in data["Replace"].items()},
        )


def reassign(dataset: Dataset, reassignment: Reassignment, uids: UidMap) -> None:
    """Move ``dataset`` (in place) as ``reassignment`` says."""
    encodings = dataset_encodings(dataset)
    for tag in reassignment.removals:
        if tag in dataset:
            del dataset[tag]
    for tag, value in reassignment.replacements.items():
        set_from_json(dataset, tag, value, encodings, "")
    _map_identifier(dataset, SERIES_INSTANCE_UID, uids)
    _map_identifier(dataset, SOP_INSTANCE_UID, uids)


def reassign_file(data: bytes, reassignment: Reassignment, uids: UidMap) -> ModifiedFile:
    """Apply ``reassignment`` to a stored DICOM file (split, merge)."""
    touched = reassignment.removals | reassignment.replacements.keys()
    edit = partial(reassign, reassignment=reassignment, uids=uids)
    return rewrite_file(data, edit, None if SPECIFIC_CHARACTER_SET in touched else touched)
