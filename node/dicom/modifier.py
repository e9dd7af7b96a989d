"""Rewriting one instance for a job, with identifiers consistent across the whole job.

A :class:`UidMap` gives every original identifier the same new value for the whole
job (so a modified study stays one study, and references between anonymized
instances keep pointing at their targets), derived from a seed saved with the job so
that a resumed job, even one redoing a step, gives the same values. Two kinds of
rewrite share :func:`rewrite_file`: a :class:`ModificationPlan` (modify, anonymize)
and a :class:`Reassignment` (split and merge of studies). No Trio, no I/O: the service layer reads, stores and keeps the map.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import struct
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, DeflatedExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from .. import __version__
from ..errors import ErrorCode, OrthancError
from .dictionary import creator_slot, is_creator_slot, is_private_group
from .ids import Level, hierarchy_ids
from .json_elements import dataset_encodings, empty_element, set_from_json
from .modification import (
    IDENTIFIER_TAGS,
    LEVEL_UIDS,
    PATIENT_ID,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    Action,
    ModificationPlan,
)
from .parse import read_dataset
from .tags import element_text, format_tag, identifier, parse_tag

_UID_NAMES = {PATIENT_ID: "PatientID", STUDY_UID: "StudyInstanceUID", SERIES_UID: "SeriesInstanceUID"}
_SEED_BYTES = 16


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
        return str(generate_uid(entropy_srcs=[self.seed, original]))

    def patient_id(self, original: str) -> str:
        digest = hashlib.sha256(f"{self.seed}\0{original}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def to_json(self) -> dict[str, str]:
        return {"Seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UidMap:
        return cls(str(data["Seed"]))


def _check_level(plan: ModificationPlan) -> None:
    """The rules of modify-anonymize.md §2.1, checked when the plan is applied (inside the job)."""
    if any(plan.actions.get(tag, (None,))[0] is Action.REMOVE for tag in IDENTIFIER_TAGS):
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


def _map_uids(uids: UidMap, element: DataElement) -> None:
    value = element.value
    if isinstance(value, (list, MultiValue)):
        element.value = [uids.uid(str(v).rstrip(" \0")) if v else v for v in value]
    elif isinstance(value, str) and value.rstrip(" \0"):
        element.value = uids.uid(value.rstrip(" \0"))


def _anonymize_deep(dataset: Dataset, plan: ModificationPlan, uids: UidMap, nested: bool) -> None:
    """Anonymization beyond the top level: map UIDs wherever they occur, so that references
    follow their targets, and apply the remove and clear lists inside sequences too (as Orthanc does).
    """
    nested_uids = (STUDY_UID, SERIES_UID, SOP_UID) if nested else ()
    for tag in list(dataset.keys()):
        if not nested and (tag in IDENTIFIER_TAGS or plan.kept(tag) or plan.replaced(tag)):
            continue  # set by the user, or already mapped by level
        action = plan.actions.get(tag, (None,))[0] if nested else None
        if action is Action.REMOVE:
            del dataset[tag]
            continue
        element = dataset[tag]
        if action is Action.CLEAR:
            dataset.add(empty_element(element))
        elif element.VR == "SQ":
            for item in element.value:
                _anonymize_deep(item, plan, uids, nested=True)
        elif tag in plan.uid_tags or tag in nested_uids:
            _map_uids(uids, element)


def _map_identifier(dataset: Dataset, tag: int, uids: UidMap) -> None:
    """Give a top-level identifier (study, series, SOP instance UID) its new value for the job."""
    if tag in dataset:
        dataset[tag].value = uids.uid(str(dataset[tag].value).rstrip(" \0"))


def _in_ranges(tag: int, ranges: tuple[tuple[int, int, int, int], ...]) -> bool:
    group, elem = tag >> 16, tag & 0xFFFF
    return any(g0 <= group <= g1 and e0 <= elem <= e1 for g0, g1, e0, e1 in ranges)


def apply_plan(dataset: Dataset, plan: ModificationPlan, uids: UidMap) -> None:
    """Modify ``dataset`` in place: checks, private tags, profile and user lists, identifiers, paths."""
    _check_level(plan)
    encodings = dataset_encodings(dataset)
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
        _anonymize_deep(dataset, plan, uids, nested=False)
    for path in plan.path_removals:
        for item in path.items(dataset):
            if path.tag in item:
                del item[path.tag]
    for path, value in plan.path_replacements:
        for item in path.items(dataset):
            set_from_json(item, path.tag, value, encodings, plan.private_creator)


def _fresh_meta(dataset: Dataset) -> FileMetaDataset:
    """A new file meta header naming the (possibly new) SOP instance, as a writer of the file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.get("SOPClassUID", dataset.file_meta.get("MediaStorageSOPClassUID", ""))
    meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = dataset.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _VERSION_NAME
    return meta


# -- encoding a rewritten dataset ------------------------------------------------------
#
# pydicom's writer costs some 10 µs per element and deep-copies the meta header; a
# rewrite changes a few elements and leaves the others as they were read. So the file
# is written here, meta header and unchanged raw elements byte for byte as pydicom
# would write them, and pydicom encodes only what changed (or everything, when the
# encoding or character set changes).

_UNDEFINED_LENGTH = 0xFFFFFFFF
_VERSION_NAME = f"TRIO_NODE_{__version__}"[:16]
_PREAMBLE = b"\0" * 128


def _header(tag: int, vr: str, length: int) -> bytes:
    """Tag, VR and length of an element in explicit VR little endian."""
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in EXPLICIT_VR_LENGTH_32:
        return head + struct.pack("<HI", 0, length)
    return head + struct.pack("<H", length)


def _element(tag: int, vr: str, value: bytes) -> bytes:
    return _header(tag, vr, len(value)) + value


def _even(text: str, pad: bytes) -> bytes:
    data = text.encode("ascii")
    return data + pad if len(data) % 2 else data


def _meta_group(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    """The meta header pydicom writes for :func:`_fresh_meta` with these values."""
    elements = b"".join(
        [
            _element(0x00020001, "OB", b"\x00\x01"),
            _element(0x00020002, "UI", _even(sop_class, b"\0")),
            _element(0x00020003, "UI", _even(sop_instance, b"\0")),
            _element(0x00020010, "UI", _even(syntax, b"\0")),
            _element(0x00020012, "UI", _even(PYDICOM_IMPLEMENTATION_UID, b"\0")),
            _element(0x00020013, "SH", _even(_VERSION_NAME, b" ")),
        ]
    )
    return _element(0x00020000, "UL", struct.pack("<I", len(elements))) + elements


def _raw_parts(raw: RawDataElement, implicit: bool, little: bool) -> tuple[bytes, bytes] | None:
    """(header, value) of a raw element as pydicom writes it back in its own encoding; None
    where pydicom must write it."""
    value = raw.value
    if not little or raw.length == _UNDEFINED_LENGTH or not isinstance(value, bytes) or len(value) % 2:
        return None
    if implicit:
        return struct.pack("<HHI", raw.tag >> 16, raw.tag & 0xFFFF, len(value)), value
    vr = raw.VR
    if vr is None or len(vr) != 2 or (vr not in EXPLICIT_VR_LENGTH_32 and len(value) > 0xFFFF):
        return None
    return _header(raw.tag, vr, len(value)), value


def _buffer(implicit: bool, little: bool) -> DicomBytesIO:
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    return buffer


def _body(dataset: Dataset, implicit: bool, little: bool) -> list[bytes]:
    """What pydicom's write_dataset writes, in pieces: unchanged raw elements are copied (once,
    by the final join: pixel data can be large)."""
    buffer = _buffer(implicit, little)
    charset = dataset.get("SpecificCharacterSet")
    current = convert_encodings(charset) if charset else default_encoding
    if dataset.original_encoding != (implicit, little) or dataset.original_character_set != current:
        write_dataset(buffer, dataset)  # values are re-encoded
        return [buffer.getvalue()]
    charset = default_encoding if charset is None else charset
    parts: list[bytes] = []
    for tag in sorted(dataset.keys()):
        if tag.element == 0 and tag.group > 6:
            continue  # retired group lengths are not written
        element = dataset.get_item(tag)
        raw = _raw_parts(element, implicit, little) if isinstance(element, RawDataElement) else None
        if raw is None:
            write_data_element(buffer, element, charset)
            continue
        if buffer.tell():
            parts.append(buffer.getvalue())
            buffer = _buffer(implicit, little)
        parts += raw
    parts.append(buffer.getvalue())
    return parts


def encode_with_pydicom(dataset: Dataset) -> bytes:
    """What :func:`encode_file` must equal byte for byte: pydicom's own Part-10 writing."""
    dataset.file_meta = _fresh_meta(dataset)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def encode_file(dataset: Dataset) -> bytes:
    """``dataset`` as a Part-10 file with a new meta header naming its (possibly new) SOP
    instance: the bytes of pydicom's ``save_as(enforce_file_format=True)``, for less."""
    syntax = dataset.file_meta.TransferSyntaxUID
    sop_class = identifier(dataset, "SOPClassUID")
    if sop_class is None:
        sop_class = str(dataset.file_meta.get("MediaStorageSOPClassUID", ""))
    sop_instance = identifier(dataset, "SOPInstanceUID") or ""
    preamble = getattr(dataset, "preamble", None) or _PREAMBLE
    plain = syntax.is_transfer_syntax and not syntax.is_private and syntax != DeflatedExplicitVRLittleEndian
    if not (plain and sop_class and sop_instance and len(preamble) == len(_PREAMBLE)):
        return encode_with_pydicom(dataset)  # pydicom deflates, or refuses what is missing
    pixels = dataset.get_item(0x7FE00010)
    if pixels is not None and (getattr(pixels, "length", None) == _UNDEFINED_LENGTH) != syntax.is_compressed:
        dataset["PixelData"].is_undefined_length = syntax.is_compressed  # as pydicom's writer does
    meta = _meta_group(sop_class, sop_instance, syntax)
    return b"".join([preamble, b"DICM", meta, *_body(dataset, syntax.is_implicit_VR, syntax.is_little_endian)])


@dataclass
class ModifiedFile:
    data: bytes
    source_ids: tuple[str, str, str, str]  # Orthanc IDs of the original, patient first


def _dicom_ids(dataset: Dataset) -> tuple[str, str, str, str]:
    keywords = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    return hierarchy_ids(*(identifier(dataset, k) or "" for k in keywords))


def rewrite_file(data: bytes, edit: Callable[[Dataset], None]) -> ModifiedFile:
    """Read a stored DICOM file, ``edit`` its dataset in place and encode the result (CPU work: run it in a thread)."""
    dataset = read_dataset(data)
    source_ids = _dicom_ids(dataset)
    edit(dataset)
    for tag in [t for t in list(dataset.keys()) if t.element == 0 and t.group >= 0x0008]:
        del dataset[tag]  # group lengths would be stale
    return ModifiedFile(encode_file(dataset), source_ids)


def modify_file(data: bytes, plan: ModificationPlan, uids: UidMap) -> ModifiedFile:
    """Apply ``plan`` to a stored DICOM file (modify, anonymize)."""
    return rewrite_file(data, lambda dataset: apply_plan(dataset, plan, uids))


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
    _map_identifier(dataset, SERIES_UID, uids)
    _map_identifier(dataset, SOP_UID, uids)


def reassign_file(data: bytes, reassignment: Reassignment, uids: UidMap) -> ModifiedFile:
    """Apply ``reassignment`` to a stored DICOM file (split, merge)."""
    return rewrite_file(data, lambda dataset: reassign(dataset, reassignment, uids))
