"""What /instances/{id}/content/{path} shows of a dataset: tags, sequence items, raw values.

A path alternates tags and item indexes (`0008-1140/0/0008-1155`). The top-level Pixel
Data is read as Orthanc reads it: a list of its pieces (one piece, the whole value, when
it is native; else the fragments of the encapsulated value, the Basic Offset Table first),
each read by its index. Pure: the route hands the dataset in and shapes the answer.
"""

from __future__ import annotations

import struct

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from ..errors import OrthancError
from .tag_numbers import PIXEL_DATA
from .tags import parse_tag, raw_vr

_ITEM_TAG = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_ITEM_HEADER = struct.Struct("<HHI")
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ELEMENT_HEADER_SIZE = 8  # tag and length of an implicit VR element


class NotInDataset(Exception):
    """The path names nothing in the dataset (the route answers 404)."""


Content = list[str] | bytes  # a listing, or a value's bytes


def _tag_key(tag: int) -> str:
    return f"{tag >> 16:04x}-{tag & 0xFFFF:04x}"


def _encoded_value(element: DataElement) -> bytes:
    """Raw bytes of an already-decoded element, re-encoded as written in the file."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    write_data_element(buffer, element)
    return buffer.getvalue()[_ELEMENT_HEADER_SIZE:]


def _value_bytes(dataset: Dataset, tag: int) -> bytes:
    raw = dataset.get_item(tag)
    value = getattr(raw, "value", None)
    return value if isinstance(value, bytes) else _encoded_value(dataset[tag])


def pixel_data_pieces(value: bytes, encapsulated: bool) -> list[bytes]:
    """The pieces /content lists for a Pixel Data value: itself when native; when encapsulated,
    the value of each item (Basic Offset Table, then fragments), up to the sequence delimiter."""
    if not encapsulated:
        return [value]
    pieces: list[bytes] = []
    position = 0
    while position + _ITEM_HEADER.size <= len(value):
        group, element, length = _ITEM_HEADER.unpack_from(value, position)
        position += _ITEM_HEADER.size
        if (group << 16) | element != _ITEM_TAG or length == _UNDEFINED_LENGTH:
            break  # the delimiter, or bytes that are not an item
        pieces.append(value[position : position + length])
        position += length
    return pieces


def _pixel_data(dataset: Dataset, parts: list[str]) -> Content:
    raw = dataset.get_item(PIXEL_DATA)
    if isinstance(raw, RawDataElement):
        encapsulated = raw.length == _UNDEFINED_LENGTH
    else:
        encapsulated = bool(getattr(raw, "is_undefined_length", False))
    pieces = pixel_data_pieces(_value_bytes(dataset, PIXEL_DATA), encapsulated)
    if not parts:
        return [str(i) for i in range(len(pieces))]
    index = parts[0]
    if len(parts) > 1 or not index.isdigit() or int(index) >= len(pieces):
        raise NotInDataset()
    return pieces[int(index)]


def content_at(dataset: Dataset, path: str) -> Content:
    """What the path names: a listing (tags of an item, indexes of a sequence's items or of
    the Pixel Data's pieces) or the bytes of a value; NotInDataset when it names nothing."""
    parts = [p for p in path.split("/") if p]
    current = dataset
    top_level = True
    while True:
        if not parts:
            return [_tag_key(int(e.tag)) for e in current]
        try:
            tag = int(parse_tag(parts.pop(0)))
        except OrthancError:
            raise NotInDataset() from None
        if tag not in current:
            raise NotInDataset()
        if top_level and tag == PIXEL_DATA:
            return _pixel_data(current, parts)
        raw = current.get_item(tag)
        if isinstance(raw, RawDataElement) and raw_vr(raw) not in (None, "SQ", "UN"):
            if parts:  # a value: read as written, the dataset left as it is for other views
                raise NotInDataset()
            return raw.value or b""
        element = current[tag]  # a sequence, or a value whose VR only decoding tells
        if element.VR != "SQ":
            if parts:
                raise NotInDataset()
            return _value_bytes(current, tag)
        if not parts:
            return [str(i) for i in range(len(element.value))]
        index = parts.pop(0)
        if not index.isdigit() or int(index) >= len(element.value):
            raise NotInDataset()
        current = element.value[int(index)]
        top_level = False
