"""The top-level elements of a plain Part-10 file, read straight from its bytes.

Ingest needs a few dozen values of each received file, and pydicom's reader costs more
than everything else the node does for a small one: a generator step, a file-like read and
a dataset entry per element, a file meta dataset validated and converted. This reader
walks the elements of the usual file in one loop and keeps of each what pydicom's raw
element would hold (VR, value, offset) in a plain tuple, which the value readers of
:mod:`.tags` take as it is.

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
from typing import cast

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, empty_value_for_VR
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
# The VRs a file may spell (not pydicom's "US or SS" kind): code -> (VR, whether its length has 32 bits).
_VRS = {code: (vr, vr in EXPLICIT_VR_LENGTH_32) for code in ENCODED_VR if len(vr := code.decode("ascii")) == 2}
# Values nothing reads while a file is described: they stay in the file, not copied out.
_BULK_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW"])
# The value pydicom gives an empty element, by VR (None: implicit VR).
_EMPTY_VALUES: dict[str | None, bytes | None] = {
    vr: cast("bytes | None", empty_value_for_VR(vr, raw=True)) for vr in [None, *(vr for vr, _ in _VRS.values())]
}
# The VRs of a SpecificCharacterSet pydicom reads as this reader does (None: implicit VR, CS).
_CHARSET_VRS = frozenset([None, "CS"])
# What pydicom reads in Explicit VR Little Endian but these: implicit VR, or not for this reader.
_NOT_PLAIN_SYNTAXES = frozenset([DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, *PrivateTransferSyntaxes])
_KNOWN_SYNTAXES = {uid.encode("ascii"): str(uid) for uid in AllTransferSyntaxes}
# An element read from its bytes: (VR, value, where the value starts in the file). The VR is
# None in an implicit VR file; the value is what pydicom's raw element holds (None for an empty
# value of most binary VRs, see empty_value_for_VR), but a view into the file for bulk binary
# values, not copied (still told apart from an empty one, which pydicom converts when it is read).
Span = tuple[str | None, bytes | memoryview | None, int]
Element = Span | DataElement  # DataElement: a sequence of undefined length, read already


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
    vr, long = _VRS.get(code, (None, False))
    if vr is None:
        raise _NotPlain
    if long:
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
        tag, vr, length, value = _explicit_header(data, position, end)
        if length == _UNDEFINED_LENGTH or value + length > end:
            raise _NotPlain
        if tag == TRANSFER_SYNTAX_UID:
            if vr != "UI":  # pydicom reads it by that VR, to a value that names no syntax
                raise _NotPlain
            syntax = _transfer_syntax(data[value : value + length])
        position = value + length
    if not isinstance(syntax, str) or not syntax or syntax in _NOT_PLAIN_SYNTAXES or position >= end:
        raise _NotPlain
    return str(syntax), position


def _encodings(elements: dict[int, Element]) -> list[str]:
    """The character sets pydicom's reader hands a sequence: those the dataset named before it.
    A SpecificCharacterSet written with a VR other than its own is left to pydicom, which reads
    it by that VR (a number, a name...) and then fails to take it for character sets."""
    charset = elements.get(SPECIFIC_CHARACTER_SET)
    if charset is None:
        return [default_encoding]
    if not isinstance(charset, tuple) or charset[0] not in _CHARSET_VRS:
        raise _NotPlain
    value = charset[1]  # a CS value: bytes, or None when empty in an implicit VR file
    return convert_encodings(convert_string(value if isinstance(value, bytes) else b"", True))


def _sequence(data: bytes, tag: int, value: int, implicit: bool, encodings: list[str]) -> tuple[DataElement, int]:
    """A sequence of undefined length, read by pydicom as its reader does; and where it ends."""
    buffer = io.BytesIO(data)
    buffer.seek(value)
    items = read_sequence(buffer, implicit, True, _UNDEFINED_LENGTH, encodings)
    return DataElement(BaseTag(tag), "SQ", items, value, is_undefined_length=True), buffer.tell()


def _delimited(data: bytes, vr: str, value: int) -> tuple[Span, int]:
    """A value of undefined length but a sequence's (encapsulated pixel data), read by pydicom
    up to its delimiter; and where it ends. EOFError when the delimiter is missing."""
    buffer = io.BytesIO(data)
    buffer.seek(value)
    content = read_undefined_length_value(buffer, True, SequenceDelimiterTag)
    return (vr, content, value), buffer.tell()


def _read_dataset(data: bytes, start: int, implicit: bool) -> dict[int, Element]:
    """The elements of the dataset from ``start`` to the end of the file.

    The hot loop of ingest: the header of an explicit element is read here rather than by
    :func:`_explicit_header`, sparing a call per element.
    """
    elements: dict[int, Element] = {}
    position, end = start, len(data)
    view = memoryview(data)
    if _uppercase(data[start + 4 : start + 6]) == implicit:  # pydicom would switch encodings here
        raise _NotPlain
    vr: str | None = None
    while position < end:
        if end - position < _SHORT_HEADER:
            raise _NotPlain
        if implicit:
            group, number, length = _IMPLICIT.unpack_from(data, position)
            value = position + _SHORT_HEADER
        else:
            group, number, code, length = _EXPLICIT.unpack_from(data, position)
            vr, long = _VRS.get(code, (None, False))
            if vr is None:
                raise _NotPlain
            if long:
                if end - position < _LONG_HEADER:
                    raise _NotPlain
                length = _LONG_LENGTH.unpack_from(data, position + _SHORT_HEADER)[0]
                value = position + _LONG_HEADER
            else:
                value = position + _SHORT_HEADER
        tag = group << 16 | number
        if group == _DELIMITER_GROUP or tag in elements:
            raise _NotPlain
        if length == _UNDEFINED_LENGTH:
            if vr == "SQ":
                elements[tag], position = _sequence(data, tag, value, implicit, _encodings(elements))
            elif vr is not None and vr != "UN":  # else pydicom looks the VR up, or looks ahead
                elements[tag], position = _delimited(data, vr, value)
            else:
                raise _NotPlain
            continue
        position = value + length
        if position > end:
            raise _NotPlain
        if not length:
            elements[tag] = (vr, _EMPTY_VALUES[vr], value)
        elif vr in _BULK_VRS:
            elements[tag] = (vr, view[value:position], value)
        else:
            elements[tag] = (vr, data[value:position], value)
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
