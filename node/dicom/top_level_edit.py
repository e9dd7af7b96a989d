"""Editing a few top-level elements of a plain file without reading and writing all of it.

A job that modifies an instance usually changes a handful of top-level elements (a
description, the identifiers of its level and below), yet pydicom reading the whole dataset
and writing it back costs several times the edit itself. Here pydicom reads a small dataset
made of only the elements the edit may touch, the edit runs on it (the very code of the
whole-dataset path, with its checks and errors), and the file is put together from the
bytes of every other element and the touched ones as pydicom writes them, behind the meta
header :func:`.part10.encode_file` writes.

The result must be, byte for byte, what reading, editing and encoding the whole dataset
gives (the tests compare both on every test file). Where that is not certain the answer is
None and the caller takes the whole-dataset path: a transfer syntax other than the plain
little endian ones, a sequence, an element of undefined or odd length, elements out of
order, an implicit VR element whose VR the dictionary leaves open.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Collection

from pydicom import datadict
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_data_element
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

from .parse import check_values, parse_errors
from .part10 import meta_group
from .tag_numbers import SPECIFIC_CHARACTER_SET, TRANSFER_SYNTAX_UID
from .tags import identifier

_PREAMBLE = 128
_MAGIC = b"DICM"
_META_GROUP = 0x0002
_FIRST_DATASET_GROUP = 0x0008  # below it (but the meta group), a dataset element is left to pydicom
_UNDEFINED_LENGTH = 0xFFFFFFFF
_PLAIN_SYNTAXES = {ExplicitVRLittleEndian: False, ImplicitVRLittleEndian: True}  # -> implicit VR
_LONG_VRS = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
_KNOWN_VRS = frozenset(vr.encode("ascii") for vr in STANDARD_VR)
_DELIMITER_GROUP = 0xFFFE
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_SHORT_LENGTH_LIMIT = 0xFFFF  # bytes: the largest value an explicit VR element of 2-byte length holds, padded
_MAX_DEPTH = 8  # sequences nested deeper are left to the whole-dataset path

# (tag, first byte, byte after the end) of each element.
Span = tuple[int, int, int]


def _header(data: bytes, offset: int, implicit: bool) -> tuple[int, bytes | None, int, int] | None:
    """(tag, VR or None if implicit, value length, header length) of the element at ``offset``."""
    if offset + 8 > len(data):
        return None
    group, element = struct.unpack_from("<HH", data, offset)
    tag = group << 16 | element
    if implicit or group == _DELIMITER_GROUP:  # items and delimiters have no VR
        return tag, None, struct.unpack_from("<I", data, offset + 4)[0], 8
    vr = data[offset + 4 : offset + 6]
    if vr not in _KNOWN_VRS:
        return None
    if vr in _LONG_VRS:
        if offset + 12 > len(data):
            return None
        return tag, vr, struct.unpack_from("<I", data, offset + 8)[0], 12
    return tag, vr, struct.unpack_from("<H", data, offset + 6)[0], 8


def _end_of_undefined(data: bytes, offset: int, implicit: bool, depth: int = 0) -> int | None:
    """Where the sequence of undefined length whose value starts at ``offset`` ends (after its
    delimiter); None for anything unusual, or nested deeper than _MAX_DEPTH."""
    if depth > _MAX_DEPTH:
        return None
    while (found := _header(data, offset, implicit)) is not None:
        tag, vr, length, header = found
        offset += header
        if tag == _SEQUENCE_END:
            return offset
        if tag in (_ITEM, _ITEM_END) or tag >> 16 != _DELIMITER_GROUP:
            if length != _UNDEFINED_LENGTH:
                offset += length
                continue
            if tag != _ITEM and (vr or b"SQ") != b"SQ":
                return None  # encapsulated or UN of undefined length
            if tag == _ITEM:
                continue  # its elements follow, up to its delimiter
            end = _end_of_undefined(data, offset, implicit, depth + 1)
            if end is None:
                return None
            offset = end
            continue
        return None
    return None


def _plain_vr(tag: int, vr: bytes | None) -> bytes | None:
    """The VR of a top-level element; None where pydicom may read it as something else."""
    if vr is not None:
        return None if vr == b"UN" else vr
    if tag & 0xFFFF == 0:
        return b"UL"  # a group length
    if (tag >> 16) % 2 or not datadict.dictionary_has_tag(tag):
        return None  # implicit private or unknown: pydicom guesses
    dictionary_vr = datadict.dictionary_VR(tag)
    return dictionary_vr.encode("ascii") if dictionary_vr in STANDARD_VR and dictionary_vr != "UN" else None


def _meta(data: bytes) -> tuple[int, str] | None:
    """Where the dataset starts, and the transfer syntax: for a file with preamble and meta header."""
    if data[_PREAMBLE : _PREAMBLE + len(_MAGIC)] != _MAGIC:
        return None
    offset = _PREAMBLE + len(_MAGIC)
    syntax = None
    while offset + 2 <= len(data) and struct.unpack_from("<H", data, offset)[0] == _META_GROUP:
        found = _header(data, offset, False)
        if found is None or found[2] == _UNDEFINED_LENGTH:
            return None
        tag, _, length, header = found
        if tag == TRANSFER_SYNTAX_UID:
            syntax = data[offset + header : offset + header + length].decode("ascii", "replace").rstrip("\0 ")
        offset += header + length
    return (offset, syntax) if syntax is not None and offset <= len(data) else None


def _spans(data: bytes, offset: int, implicit: bool) -> tuple[list[Span], set[int]] | None:
    """The top-level elements of the dataset from ``offset``, and the sequences among them, if
    every one is plain and in order."""
    spans: list[Span] = []
    sequences: set[int] = set()
    previous = -1
    while offset < len(data):
        found = _header(data, offset, implicit)
        if found is None:
            return None
        tag, raw_vr, length, header = found
        vr = _plain_vr(tag, raw_vr)
        if vr is None or tag <= previous or tag >> 16 < _FIRST_DATASET_GROUP:
            return None
        if vr == b"SQ":
            sequences.add(tag)
            end = _end_of_undefined(data, offset + header, implicit) if length == _UNDEFINED_LENGTH else None
        elif length == _UNDEFINED_LENGTH or length % 2:
            return None  # pydicom writes these its own way
        if length != _UNDEFINED_LENGTH:
            end = offset + header + length
        if end is None or end > len(data):
            return None
        spans.append((tag, offset, end))
        previous, offset = tag, end
    return (spans, sequences) if spans else None


def edit_top_level(data: bytes, touched: Collection[int], edit: Callable[[Dataset], None]) -> bytes | None:
    """The file with ``edit`` applied, where ``edit`` reads and changes only elements of ``touched``
    (and the Specific Character Set), and leaves that one as it is; None: take the whole-dataset path.

    Group lengths of the dataset are left out, as the whole-dataset path does.
    """
    meta = _meta(data)
    if meta is None:
        return None
    start, syntax = meta
    implicit = _PLAIN_SYNTAXES.get(UID(syntax))
    if implicit is None:
        return None
    found = _spans(data, start, implicit)
    if found is None:
        return None
    spans, sequences = found
    # Sequences too: the whole-dataset path reads them as it checks the file, and writes them as read.
    wanted = {*touched, *sequences, SPECIFIC_CHARACTER_SET}
    kept = [span for span in spans if span[0] & 0xFFFF != 0]  # group lengths would be stale
    small = b"".join(data[begin:end] for tag, begin, end in kept if tag in wanted)
    with parse_errors(len(data)):
        dataset = read_dataset(io.BytesIO(small), implicit, True)
        check_values(dataset, len(data))
    edit(dataset)
    sop_class = identifier(dataset, "SOPClassUID")
    sop_instance = identifier(dataset, "SOPInstanceUID")
    if not sop_class or not sop_instance:
        return None  # the whole-dataset path takes the class from the meta header, or refuses
    charset = dataset.get("SpecificCharacterSet")  # read (and so written) as the whole-dataset path does
    charset = default_encoding if charset is None else charset
    parts = [data[:_PREAMBLE], _MAGIC, meta_group(sop_class, sop_instance, syntax)]
    tags = dataset.keys()  # iterating a Dataset itself would decode every element
    edited = {int(tag): dataset.get_item(tag) for tag in tags}
    original = {tag: (begin, end) for tag, begin, end in kept}
    for tag in sorted({tag for tag in original if tag not in wanted} | edited.keys()):
        element = edited.get(tag)  # None: not in the small dataset, so untouched
        if element is None or isinstance(element, RawDataElement):
            begin, end = original[tag]
            parts.append(data[begin:end])
        else:
            parts.append(_encoded(element, implicit, charset))
    return b"".join(parts)


def _encoded(element: DataElement, implicit: bool, charset: str | list[str]) -> bytes:
    """An element as pydicom writes it. A UID (each job gives several their new value) is
    put together here, as pydicom would (ASCII, padded with a NUL to an even length): its
    writer's buffers and checks cost more than the element."""
    value = element.value
    if element.VR == "UI" and isinstance(value, str) and value.isascii() and len(value) < _SHORT_LENGTH_LIMIT:
        encoded = value.encode("ascii")
        if len(encoded) % 2:
            encoded += b"\0"
        tag = int(element.tag)
        if implicit:
            return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(encoded)) + encoded
        return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, b"UI", len(encoded)) + encoded
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, True
    write_data_element(buffer, element, charset)
    return buffer.getvalue()
