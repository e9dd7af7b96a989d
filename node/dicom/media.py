"""The DICOMDIR (Basic Directory) of a DICOM media archive.

Pure: instances come in as pydicom datasets, the DICOMDIR goes out as bytes.
Records are encoded as soon as an instance is added and only their offsets are
patched at the end, so a directory of many thousand images stays a few hundred
bytes per image. pydicom's FileSet is not used: it insists on writing (and
naming) the instance files itself, whereas the archive streams them under
``IMAGES/IM<n>`` before the DICOMDIR exists.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

from .part10 import file_head
from .tag_numbers import (
    DIRECTORY_RECORD_SEQUENCE,
    DIRECTORY_RECORD_TYPE,
    FILE_SET_CONSISTENCY_FLAG,
    FILE_SET_ID,
    FIRST_ROOT_RECORD_OFFSET,
    LAST_ROOT_RECORD_OFFSET,
    LOWER_LEVEL_RECORD_OFFSET,
    NEXT_RECORD_OFFSET,
    RECORD_IN_USE_FLAG,
    SPECIFIC_CHARACTER_SET,
)

ORTHANC_FILE_SET_ID = "ORTHANC_MEDIA"
NO_FRACTION = ".000000"  # the time of writing is given to the second, with an empty fraction
UTF8_CHARACTER_SET = "ISO_IR 192"

# The attributes each record copies from the instance, by record level, and where a missing date comes from.
_PATIENT = ("PatientName", "PatientID")
_STUDY = ("StudyDate", "StudyTime", "AccessionNumber", "StudyDescription", "StudyInstanceUID", "StudyID")
_SERIES = ("Modality", "SeriesInstanceUID", "SeriesNumber")
# The first of these the instance holds is copied, even empty; with none of them, the record
# gets the date and time at which the DICOMDIR is written (as Orthanc's do).
_FALLBACKS = {
    "StudyDate": ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"),
    "StudyTime": ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"),
}
# Written only where the instance has a value: no empty placeholder for these.
_ONLY_WITH_VALUE = frozenset({"StudyID", "SeriesNumber"})
_ITEM_TAG = b"\xfe\xff\x00\xe0"
_RECORD_IN_USE = 0xFFFF
# Byte positions, inside an encoded item, of the two offsets of the record header.
_NEXT_AT = 8 + 8
_LOWER_AT = 8 + 12 + 10 + 8


def _group_and_element(tag: int) -> tuple[int, int]:
    return tag >> 16, tag & 0xFFFF


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", *_group_and_element(tag), vr, len(value)) + value


def _text(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b" " * (len(data) % 2)


def _copy(source: Dataset, target: Dataset, keyword: str, now: Mapping[str, str]) -> None:
    """Copy a value (that of the first of its fallbacks the instance holds), or write the one
    ``now`` gives for it, or an empty one, or nothing (see :data:`_ONLY_WITH_VALUE`)."""
    for name in _FALLBACKS.get(keyword, (keyword,)):
        if name in source:
            element = source[name]
            if not (element.is_empty and keyword in _ONLY_WITH_VALUE):
                target.add(DataElement(keyword, element.VR, element.value))
            return
    if keyword not in _ONLY_WITH_VALUE:
        target.add_new(keyword, dictionary_VR(keyword), now.get(keyword))


def _encode_body(attributes: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_dataset(buffer, attributes)
    return buffer.getvalue()


def _record(kind: str, attributes: Dataset) -> bytes:
    """One Directory Record item with zero offsets (patched once positions are known)."""
    header = (
        _element(NEXT_RECORD_OFFSET, b"UL", struct.pack("<I", 0))
        + _element(RECORD_IN_USE_FLAG, b"US", struct.pack("<H", _RECORD_IN_USE))
        + _element(LOWER_LEVEL_RECORD_OFFSET, b"UL", struct.pack("<I", 0))
        + _element(DIRECTORY_RECORD_TYPE, b"CS", _text(kind))
    )
    content = header + _encode_body(attributes)
    return _ITEM_TAG + struct.pack("<I", len(content)) + content


def _is_ascii(element: DataElement) -> bool:
    values = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
    return all(str(value).isascii() for value in values if value is not None)


def _attributes(source: Dataset, keywords: tuple[str, ...], now: Mapping[str, str] | None = None) -> Dataset:
    """The record's copy of the instance's values. Text beyond ASCII is written in UTF-8, and
    the record says so whatever the instance's own character set (see :class:`DicomDir`); a
    record of ASCII text declares none, which readers that convert records need."""
    target = Dataset()
    for keyword in keywords:
        _copy(source, target, keyword, now or {})
    if not all(_is_ascii(element) for element in target):
        for element in target:
            if element.VR == "PN" and element.value is not None:
                element.value = str(element.value)  # re-encoded, not written back in its old bytes
        target.SpecificCharacterSet = UTF8_CHARACTER_SET
    return target


@dataclass(frozen=True)
class MediaEntry:
    """The four records of one instance, keyed by the identifiers that make them unique."""

    keys: tuple[str, str, str, str]
    records: tuple[bytes, bytes, bytes, bytes]
    utf8: bool = False  # a record holds text beyond ASCII (in UTF-8)


def media_entry(dataset: Dataset, file_id: tuple[str, ...], *, extended: bool, now: datetime) -> MediaEntry:
    """Encode what the DICOMDIR needs of an instance (CPU work: call it in a worker thread);
    ``now`` dates a study record whose instance says nothing of when it was made."""
    meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
    image = _attributes(dataset, ("InstanceNumber",))
    image.ReferencedFileID = list(file_id)
    image.ReferencedSOPClassUIDInFile = dataset.get("SOPClassUID", meta.get("MediaStorageSOPClassUID", ""))
    image.ReferencedSOPInstanceUIDInFile = dataset.get("SOPInstanceUID", meta.get("MediaStorageSOPInstanceUID", ""))
    image.ReferencedTransferSyntaxUIDInFile = meta.get("TransferSyntaxUID", ExplicitVRLittleEndian)
    # SeriesDescription is optional (type 3): only when the instance has it.
    described = extended and "SeriesDescription" in dataset
    series = _attributes(dataset, (*_SERIES, "SeriesDescription") if described else _SERIES)
    keys = (
        str(dataset.get("PatientID", "")),
        str(dataset.get("StudyInstanceUID", "")),
        str(dataset.get("SeriesInstanceUID", "")),
        str(image.ReferencedSOPInstanceUIDInFile),
    )
    when = {"StudyDate": now.strftime("%Y%m%d"), "StudyTime": now.strftime("%H%M%S") + NO_FRACTION}
    patient, study = _attributes(dataset, _PATIENT), _attributes(dataset, _STUDY, when)
    records = (_record("PATIENT", patient), _record("STUDY", study), _record("SERIES", series), _record("IMAGE", image))
    utf8 = any(a.get("SpecificCharacterSet") == UTF8_CHARACTER_SET for a in (patient, study, series, image))
    return MediaEntry(keys, records, utf8)


@dataclass
class _Node:
    item: bytes
    children: dict[str, _Node] = field(default_factory=dict)
    offset: int = 0


class DicomDir:
    """Collects the records of the instances written to the media, in order."""

    def __init__(self) -> None:
        self._root = _Node(b"")
        self._utf8 = False

    def add(self, entry: MediaEntry) -> None:
        """File the instance under its patient, study and series (each entity once)."""
        self._utf8 = self._utf8 or entry.utf8
        node = self._root
        for key, item in zip(entry.keys, entry.records, strict=True):
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(item)
            node = child

    def _preorder(self) -> list[_Node]:
        order: list[_Node] = []
        stack = list(reversed(self._root.children.values()))
        while stack:
            node = stack.pop()
            order.append(node)
            stack.extend(reversed(node.children.values()))
        return order

    def _link(self, node: _Node) -> None:
        """Point each child at its next sibling and at its own first child."""
        children = list(node.children.values())
        for position, child in enumerate(children):
            sibling = children[position + 1] if position + 1 < len(children) else None
            grandchildren = list(child.children.values())
            item = bytearray(child.item)
            item[_NEXT_AT : _NEXT_AT + 4] = struct.pack("<I", sibling.offset if sibling else 0)
            item[_LOWER_AT : _LOWER_AT + 4] = struct.pack("<I", grandchildren[0].offset if grandchildren else 0)
            child.item = bytes(item)
            self._link(child)

    def encode(self) -> bytes:
        """The DICOMDIR file: meta header, file-set identification, linked records."""
        prefix = file_head(MediaStorageDirectoryStorage, generate_uid())
        file_set_id = _element(FILE_SET_ID, b"CS", _text(ORTHANC_FILE_SET_ID))
        # Then two root offsets (12 bytes each), the consistency flag (10), the sequence header (12).
        position = len(prefix) + len(file_set_id) + 12 + 12 + 10 + 12
        order = self._preorder()
        for node in order:
            node.offset = position
            position += len(node.item)
        self._link(self._root)
        roots = list(self._root.children.values())
        first, last = (roots[0].offset, roots[-1].offset) if roots else (0, 0)
        items = b"".join(node.item for node in order)
        dataset = (
            file_set_id
            + _element(FIRST_ROOT_RECORD_OFFSET, b"UL", struct.pack("<I", first))
            + _element(LAST_ROOT_RECORD_OFFSET, b"UL", struct.pack("<I", last))
            + _element(FILE_SET_CONSISTENCY_FLAG, b"US", struct.pack("<H", 0))
            + struct.pack("<HH2sHI", *_group_and_element(DIRECTORY_RECORD_SEQUENCE), b"SQ", 0, len(items))
        )
        # Readers (DCMTK's dcm2xml) want the character set of text beyond ASCII declared on the
        # directory itself too, not only on the records: after the records, in tag order.
        charset = _element(SPECIFIC_CHARACTER_SET, b"CS", _text(UTF8_CHARACTER_SET)) if self._utf8 else b""
        return prefix + dataset + items + charset
