"""The top-level elements of a plain Part-10 file, read straight from its bytes.

Ingest needs a few dozen values of each received file, and pydicom's reader costs more
than everything else the node does for a small one: a generator step, a file-like read and
a dataset entry per element, a file meta dataset validated and converted. This reader
walks the elements of the usual file in one loop and keeps them as pydicom's raw
elements, so the value readers of :mod:`.tags` take them as they are.

It knows the usual file only: preamble and file meta information, then a little endian
dataset, neither deflated nor of a private transfer syntax, whose elements all have a
known VR and a length inside the file; sequences and encapsulated pixel data are read by
pydicom's own readers. For anything
else, and wherever pydicom would guess (an encoding other than the one the file meta
names, an element cut short, a tag twice), it answers None and the caller reads the file
with pydicom. So whatever it reads, pydicom reads to the same raw elements.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.filereader import ENCODED_VR, EXPLICIT_VR_LENGTH_32, read_sequence
from pydicom.fileutil import read_undefined_length_value
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.uid import (
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.values import convert_string, convert_UI

from .tag_numbers import SPECIFIC_CHARACTER_SET, TRANSFER_SYNTAX_UID

_PREAMBLE = 128
_MAGIC = b"DICM"
_META_GROUP = 0x0002
_DELIMITER_GROUP = 0xFFFE  # items and delimiters: never a top-level element
_UNDEFINED_LENGTH = 0xFFFFFFFF
_EXPLICIT = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_IMPLICIT = struct.Struct("<HHI")  # group, element, 32-bit length
_LONG_LENGTH = struct.Struct("<I")  # after the VR and two reserved bytes
_SHORT_HEADER, _LONG_HEADER = 8, 12
# The VRs a file may spell (not pydicom's "US or SS" kind), and which of them have a 32-bit length.
_VRS = {vr: vr.decode("ascii") for vr in ENCODED_VR if len(vr) == 2}
_LONG_VRS = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
# Values nothing reads while a file is described: they stay in the file, not copied out.
_BULK_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW"])
# What pydicom reads in Explicit VR Little Endian but these: implicit VR, or not for this reader.
_NOT_PLAIN_SYNTAXES = frozenset([DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, *PrivateTransferSyntaxes])
_KNOWN_SYNTAXES = {uid.encode("ascii"): str(uid) for uid in AllTransferSyntaxes}
Element = RawDataElement | DataElement  # DataElement: a sequence of undefined length, read already


@dataclass
class PlainFile:
    """What :func:`read_plain` found: the transfer syntax and the dataset's top-level elements
    by tag, as pydicom reads them (raw but for sequences of undefined length, read already)."""

    transfer_syntax: str
    implicit: bool
    elements: dict[int, Element]
    encodings: list[str]  # the character sets pydicom gives the dataset's sequences


class _NotPlain(Exception):
    """This file is for pydicom to read."""


def _uppercase(vr: bytes) -> bool:
    """What pydicom takes for the VR of an explicit element (both bytes letters A-Z)."""
    return len(vr) == 2 and 0x40 < vr[0] < 0x5B and 0x40 < vr[1] < 0x5B


def _explicit_header(data: bytes, position: int, end: int) -> tuple[int, str, int, int]:
    """(tag, VR, length, where the value starts) of the explicit VR element at ``position``."""
    if end - position < _SHORT_HEADER:
        raise _NotPlain
    group, element, code, length = _EXPLICIT.unpack_from(data, position)
    vr = _VRS.get(code)
    if vr is None:
        raise _NotPlain
    if code in _LONG_VRS:
        if end - position < _LONG_HEADER:
            raise _NotPlain
        return group << 16 | element, vr, _LONG_LENGTH.unpack_from(data, position + _SHORT_HEADER)[0], position + 12
    return group << 16 | element, vr, length, position + _SHORT_HEADER


def _transfer_syntax(value: bytes) -> object:
    """The value pydicom reads (a list when multi-valued): a known UID padded as usual is taken
    as it is, sparing pydicom's UID checks."""
    known = _KNOWN_SYNTAXES.get(value.rstrip(b"\0 "))
    return known if known is not None else convert_UI(value, True)


def _read_meta(data: bytes) -> tuple[str, int]:
    """The transfer syntax the file meta names, and where the dataset starts."""
    position, end = _PREAMBLE + len(_MAGIC), len(data)
    syntax: object = None
    while position < end and int.from_bytes(data[position : position + 2], "little") == _META_GROUP:
        tag, _, length, value = _explicit_header(data, position, end)
        if length == _UNDEFINED_LENGTH or value + length > end:
            raise _NotPlain
        if tag == TRANSFER_SYNTAX_UID:
            syntax = _transfer_syntax(data[value : value + length])
        position = value + length
    if not isinstance(syntax, str) or not syntax or syntax in _NOT_PLAIN_SYNTAXES or position >= end:
        raise _NotPlain
    return str(syntax), position


def _value(data: bytes, vr: str | None, length: int, value: int) -> bytes | None:
    if not length:
        return empty_value_for_VR(vr, raw=True)  # type: ignore[return-value]
    return None if vr in _BULK_VRS else data[value : value + length]


def _encodings(elements: dict[int, Element]) -> list[str]:
    """The character sets pydicom's reader hands a sequence: those the dataset named before it."""
    charset = elements.get(SPECIFIC_CHARACTER_SET)
    if not isinstance(charset, RawDataElement):
        return [default_encoding]
    return convert_encodings(convert_string(charset.value or b"", True))


def _sequence(data: bytes, tag: int, value: int, implicit: bool, encodings: list[str]) -> tuple[DataElement, int]:
    """A sequence of undefined length, read by pydicom as its reader does; and where it ends."""
    buffer = io.BytesIO(data)
    buffer.seek(value)
    items = read_sequence(buffer, implicit, True, _UNDEFINED_LENGTH, encodings)
    return DataElement(BaseTag(tag), "SQ", items, value, is_undefined_length=True), buffer.tell()


def _delimited(data: bytes, tag: int, vr: str, value: int) -> tuple[RawDataElement, int]:
    """A value of undefined length but a sequence's (encapsulated pixel data), read by pydicom
    up to its delimiter; and where it ends. EOFError when the delimiter is missing."""
    buffer = io.BytesIO(data)
    buffer.seek(value)
    content = read_undefined_length_value(buffer, True, SequenceDelimiterTag)
    return RawDataElement(BaseTag(tag), vr, _UNDEFINED_LENGTH, content, value, False, True), buffer.tell()


def _read_dataset(data: bytes, start: int, implicit: bool) -> dict[int, Element]:
    elements: dict[int, Element] = {}
    position, end = start, len(data)
    if _uppercase(data[start + 4 : start + 6]) == implicit:  # pydicom would switch encodings here
        raise _NotPlain
    while position < end:
        if implicit:
            if end - position < _SHORT_HEADER:
                raise _NotPlain
            group, number, length = _IMPLICIT.unpack_from(data, position)
            tag, vr, value = group << 16 | number, None, position + _SHORT_HEADER
        else:
            tag, vr, length, value = _explicit_header(data, position, end)
        if tag >> 16 == _DELIMITER_GROUP or tag in elements:
            raise _NotPlain
        if length == _UNDEFINED_LENGTH:
            if vr == "SQ":
                elements[tag], position = _sequence(data, tag, value, implicit, _encodings(elements))
            elif vr is not None and vr != "UN":  # else pydicom looks the VR up, or looks ahead
                elements[tag], position = _delimited(data, tag, vr, value)
            else:
                raise _NotPlain
            continue
        if value + length > end:
            raise _NotPlain
        elements[tag] = RawDataElement(BaseTag(tag), vr, length, _value(data, vr, length, value), value, implicit, True)
        position = value + length
    return elements


def read_plain(data: bytes) -> PlainFile | None:
    """The elements of a plain Part-10 file (see the module), None for any other file."""
    if data[_PREAMBLE : _PREAMBLE + len(_MAGIC)] != _MAGIC:
        return None
    try:
        syntax, start = _read_meta(data)
        implicit = syntax == ImplicitVRLittleEndian
        elements = _read_dataset(data, start, implicit)
        return PlainFile(syntax, implicit, elements, _encodings(elements))
    except (_NotPlain, UnicodeDecodeError):
        return None
