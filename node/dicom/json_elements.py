"""Data elements built from the JSON values of a request (`Replace` of /modify and /anonymize).

A value is a string (a data URI for binary content), null for an empty value, or for
a sequence a list of items, each mapping tag names to values. The VR comes from the
element being replaced, else from the dictionaries.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from pydicom import config as pydicom_config
from pydicom import datadict
from pydicom.charset import decode_bytes
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from ..errors import ErrorCode, OrthancError
from .dictionary import is_creator_slot, is_private_group
from .tags import format_tag, parse_tag

_BINARY_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "UN"])
_INT_VRS = frozenset(["US", "SS", "UL", "SL", "UV", "SV"])
_FLOAT_VRS = frozenset(["FL", "FD"])
_DATA_URI = "data:"


def vr_for(dataset: Dataset, tag: int, creator: str) -> str:
    """The VR of the element: as present in the dataset, else from the dictionaries (UN if unknown)."""
    if tag in dataset:
        vr = str(dataset[tag].VR)
    elif is_private_group(tag >> 16):
        if is_creator_slot(tag):
            return "LO"
        try:
            vr = datadict.private_dictionary_VR(tag, creator) if creator else "UN"
        except KeyError:
            vr = "UN"
    else:
        try:
            vr = datadict.dictionary_VR(tag)
        except KeyError:
            vr = "UN"
    return vr.split(" or ")[0]


def bad_type(tag: int) -> OrthancError:
    return OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f"Bad Parameter type for tag {format_tag(tag)}")


def _out_of_range(tag: int, text: str) -> OrthancError:
    return OrthancError(
        ErrorCode.BAD_FILE_FORMAT,
        f'While creating a DICOM instance, tag ({format_tag(tag)}) has out-of-range value: "{text}"',
    )


def _decoded_uri(text: str) -> bytes | None:
    """The payload of `data:<mime>;base64,<payload>`, or None for an ordinary string."""
    if not text.startswith(_DATA_URI) or ";base64," not in text:
        return None
    try:
        return base64.b64decode(text.split(";base64,", 1)[1], validate=True)
    except binascii.Error as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Invalid data URI scheme") from exc


def _numbers(tag: int, vr: str, text: str) -> list[int] | list[float]:
    parse = int if vr in _INT_VRS else float
    try:
        return [parse(part.strip()) for part in text.split("\\")] if text.strip() else []
    except ValueError as exc:
        raise _out_of_range(tag, text) from exc


def element_from_json(tag: int, value: Any, vr: str, encodings: list[str], creator: str) -> DataElement:
    """A data element from a Replace value, converted the way its VR needs."""
    if vr == "SQ":
        if value is None:
            return DataElement(tag, "SQ", Sequence())
        if not isinstance(value, list):
            if isinstance(value, str):
                raise _out_of_range(tag, value)
            raise bad_type(tag)
        items = [_item(entry, encodings, creator) for entry in value]
        return DataElement(tag, "SQ", Sequence(items))
    if isinstance(value, list):
        raise bad_type(tag)
    text = value or ""
    payload = _decoded_uri(text)
    converted: Any
    if vr in _BINARY_VRS:
        converted = payload if payload is not None else text.encode("utf-8")
    else:
        if payload is not None:
            text = decode_bytes(payload, encodings, set())
        if vr in _INT_VRS or vr in _FLOAT_VRS:
            converted = _numbers(tag, vr, text)
        elif vr == "AT":
            converted = [Tag(int(parse_tag(part))) for part in text.split("\\") if part.strip()]
        else:
            converted = text
        if isinstance(converted, list) and len(converted) == 1:
            converted = converted[0]
        elif converted == []:
            converted = None
    try:
        return DataElement(tag, vr, converted, validation_mode=pydicom_config.IGNORE)
    except (ValueError, OverflowError) as exc:
        raise _out_of_range(tag, text) from exc


def _item(entries: Mapping[str, Any], encodings: list[str], creator: str) -> Dataset:
    item = Dataset()
    for name, value in entries.items():
        tag = int(parse_tag(name))
        item.add(element_from_json(tag, value, vr_for(item, tag, creator), encodings, creator))
    return item


def empty_element(element: DataElement) -> DataElement:
    value = Sequence() if element.VR == "SQ" else None
    return DataElement(element.tag, element.VR, value, validation_mode=pydicom_config.IGNORE)
