"""Part-10 files: the one place that writes file meta information.

Every DICOM file the node makes goes out through here: an instance built from JSON
(:func:`to_part10`), a stored instance rewritten by a job (:func:`encode_file`), and
the head of a DICOMDIR (:func:`file_head`). Keeping them together keeps one answer to
what the meta header of our files holds, and the byte-exact fast path next to the
pydicom writing it must equal.
"""

from __future__ import annotations

import io
import struct

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset, write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from .. import __version__
from ..errors import ErrorCode, OrthancError
from .tag_numbers import (
    FILE_META_GROUP_LENGTH,
    FILE_META_VERSION,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    MEDIA_STORAGE_SOP_CLASS_UID,
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    PIXEL_DATA,
    TRANSFER_SYNTAX_UID,
)
from .tags import identifier

# The file meta needs a SOP class even when the body gives none: the one DCMTK (hence Orthanc) writes.
GENERIC_FILE_SOP_CLASS = "1.2.276.0.7230010.3.1.0.1"


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


def _fresh_meta(dataset: Dataset) -> FileMetaDataset:
    """A new file meta header naming the (possibly new) SOP instance, as a writer of the file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.get("SOPClassUID", dataset.file_meta.get("MediaStorageSOPClassUID", ""))
    meta.MediaStorageSOPInstanceUID = dataset.get("SOPInstanceUID", "")
    meta.TransferSyntaxUID = dataset.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = _VERSION_NAME
    return meta


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


def meta_group(sop_class: str, sop_instance: str, syntax: str) -> bytes:
    """The meta header pydicom writes for :func:`_fresh_meta` with these values."""
    elements = b"".join(
        [
            _element(FILE_META_VERSION, "OB", b"\x00\x01"),
            _element(MEDIA_STORAGE_SOP_CLASS_UID, "UI", _even(sop_class, b"\0")),
            _element(MEDIA_STORAGE_SOP_INSTANCE_UID, "UI", _even(sop_instance, b"\0")),
            _element(TRANSFER_SYNTAX_UID, "UI", _even(syntax, b"\0")),
            _element(IMPLEMENTATION_CLASS_UID, "UI", _even(PYDICOM_IMPLEMENTATION_UID, b"\0")),
            _element(IMPLEMENTATION_VERSION_NAME, "SH", _even(_VERSION_NAME, b" ")),
        ]
    )
    return _element(FILE_META_GROUP_LENGTH, "UL", struct.pack("<I", len(elements))) + elements


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
    pixels = dataset.get_item(PIXEL_DATA)
    if pixels is not None and (getattr(pixels, "length", None) == _UNDEFINED_LENGTH) != syntax.is_compressed:
        dataset["PixelData"].is_undefined_length = syntax.is_compressed  # as pydicom's writer does
    meta = meta_group(sop_class, sop_instance, syntax)
    return b"".join([preamble, b"DICM", meta, *_body(dataset, syntax.is_implicit_VR, syntax.is_little_endian)])


# -- writing a new instance or a DICOMDIR ----------------------------------------------


def to_part10(dataset: Dataset) -> bytes:
    """The dataset as a Part-10 file in Explicit VR Little Endian."""
    if not str(dataset.get("SOPInstanceUID", "")).strip():  # pydicom cannot write the file meta without it
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(str(dataset.get("SOPClassUID", "")) or GENERIC_FILE_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def file_head(sop_class: str, sop_instance: str) -> bytes:
    """Preamble, ``DICM`` and meta group of a file in Explicit VR Little Endian whose
    dataset the caller encodes itself (the DICOMDIR)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    head = DicomBytesIO()
    head.write(_PREAMBLE + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    return head.getvalue()
