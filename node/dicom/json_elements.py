"""Data elements built from the JSON values of a request: the one conversion behind
/tools/create-dicom (`Tags`), /modify and /anonymize (`Replace`), split and merge.

A value is a string (a data URI for binary content), null for an empty value, or for
a sequence a list of items, each mapping tag names to values. The VR comes from the
element being replaced, else from the dictionaries. Every error of a value is raised
here, before anything is written: a wrong shape is error 5, a value that its VR cannot
hold (`US 70000`, `IS abc`) error 15, as Orthanc reports them.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from collections.abc import Mapping
from typing import Any

from pydicom import config as pydicom_config
from pydicom import datadict
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from ..errors import ErrorCode, OrthancError
from ..nesting import MAX_SEQUENCE_DEPTH
from .dictionary import creator_slot, is_creator_slot, is_private_group
from .tags import format_tag, parse_tag

BINARY_VRS = frozenset(["OB", "OD", "OF", "OL", "OV", "OW", "UN"])
# struct layouts of the binary numbers: a value that does not pack does not fit its VR.
_NUMBER_LAYOUTS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"}
_INT_VRS = frozenset(["US", "SS", "UL", "SL", "UV", "SV"])
_BINARY_URI_PREFIX = "data:application/octet-stream;base64,"
_DATA_URI = re.compile(r"^data:([^;,]*)(;base64)?,(.*)$", re.DOTALL)


def dataset_encodings(dataset: Dataset) -> list[str]:
    """The Python codecs of the dataset's Specific Character Set (ASCII when absent)."""
    return convert_encodings(dataset.get("SpecificCharacterSet", "ISO_IR 6"))


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


def _bad_type(tag: int) -> OrthancError:
    return OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f"Bad Parameter type for tag {format_tag(tag)}")


def _out_of_range(tag: int, text: str) -> OrthancError:
    return OrthancError(
        ErrorCode.BAD_FILE_FORMAT,
        f'While creating a DICOM instance, tag ({format_tag(tag)}) has out-of-range value: "{text}"',
    )


def _too_deep() -> OrthancError:
    return OrthancError(
        ErrorCode.BAD_FILE_FORMAT, f"Sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels cannot be created"
    )


def check_shape(tag: int, value: Any) -> None:
    """A value is a string, null, or a list of items (objects of tag -> value): else error 5.
    Sequences nest at most MAX_SEQUENCE_DEPTH levels: else error 15, as for such a file.

    Checked when a request is parsed, so that a job never starts with a body it cannot apply,
    and level by level in a loop, so that the conversion, which recurses, only meets values
    of a bounded depth.
    """
    pending = [(tag, value, 1)]
    for element, current, depth in pending:  # grows while it is walked: breadth first
        if current is None or isinstance(current, str):
            continue
        if not isinstance(current, list) or not all(isinstance(item, dict) for item in current):
            raise _bad_type(element)
        if current and depth > MAX_SEQUENCE_DEPTH:
            raise _too_deep()
        pending.extend((int(parse_tag(key)), inner, depth + 1) for item in current for key, inner in item.items())


def parse_data_uri(text: str) -> tuple[str, bytes]:
    """`data:<mime>;base64,<payload>` as (mime, bytes), or error 15."""
    match = _DATA_URI.match(text)
    if not match or not match.group(2):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Not a data URI with a base64 payload (data:<mime>;base64,...)")
    try:
        payload = base64.b64decode("".join(match.group(3).split()), validate=True)
    except binascii.Error:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The payload of the data URI is not valid base64") from None
    return match.group(1).strip().lower(), payload


def _decoded_uri(text: str) -> bytes | None:
    """The payload of a value written as binary data, None for any other string.

    Only the exact `data:application/octet-stream;base64,` prefix marks binary data, as in
    Orthanc: another data URI (`data:image/png;base64,...`) is a string like any other.
    """
    if not text.startswith(_BINARY_URI_PREFIX):
        return None
    return parse_data_uri(text)[1]


def _numbers(tag: int, vr: str, text: str) -> list[int] | list[float]:
    parse = int if vr in _INT_VRS else float
    try:
        return [parse(part.strip()) for part in text.split("\\")] if text.strip() else []
    except ValueError as exc:
        raise _out_of_range(tag, text) from exc


def _check_range(element: DataElement, text: str) -> None:
    """A number its VR cannot hold is refused now rather than when the file is written."""
    layout = _NUMBER_LAYOUTS.get(element.VR)
    if layout is None or element.value is None:
        return
    numbers = element.value if isinstance(element.value, (list, MultiValue)) else [element.value]
    try:
        struct.pack(f"<{len(numbers)}{layout}", *numbers)
    except (struct.error, OverflowError):
        raise _out_of_range(int(element.tag), text) from None


def _element_from_json(tag: int, value: Any, vr: str, encodings: list[str], creator: str) -> DataElement:
    """A data element from a JSON value, converted the way its VR needs."""
    if vr == "SQ":
        if value is None:
            return DataElement(tag, "SQ", Sequence())
        if not isinstance(value, list):
            if isinstance(value, str):
                raise _out_of_range(tag, value)
            raise _bad_type(tag)
        items = [_item(entry, encodings, creator) for entry in value]
        return DataElement(tag, "SQ", Sequence(items))
    if isinstance(value, list):
        raise _bad_type(tag)
    text = value or ""
    payload = _decoded_uri(text)
    converted: Any
    if vr in BINARY_VRS:
        converted = payload if payload is not None else text.encode("utf-8")
        converted += b"\0" * (len(converted) % 2)  # values have an even length, whatever their VR
    else:
        if payload is not None:
            if vr not in _NUMBER_LAYOUTS:  # a text value ends at its first NUL byte, as a C string does
                payload = payload.split(b"\0")[0]
            text = decode_bytes(payload, encodings, set())
        if vr in _NUMBER_LAYOUTS:
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
        element = DataElement(tag, vr, converted, validation_mode=pydicom_config.IGNORE)
    except (ValueError, OverflowError) as exc:
        raise _out_of_range(tag, text) from exc
    _check_range(element, text)
    return element


def _item(entries: Mapping[str, Any], encodings: list[str], creator: str) -> Dataset:
    item = Dataset()
    for name, value in entries.items():
        tag = int(parse_tag(name))
        item.add(_element_from_json(tag, value, vr_for(item, tag, creator), encodings, creator))
    return item


def set_from_json(dataset: Dataset, tag: int, value: Any, encodings: list[str], creator: str) -> None:
    """Set (or insert) an element; a new private one gets ``creator`` in its block's slot when free."""
    is_new = tag not in dataset
    dataset.add(_element_from_json(tag, value, vr_for(dataset, tag, creator), encodings, creator))
    if is_new and creator and is_private_group(tag >> 16) and not is_creator_slot(tag):
        slot = creator_slot(tag)
        if slot not in dataset:
            dataset.add(DataElement(slot, "LO", creator))


def empty_element(element: DataElement) -> DataElement:
    value = Sequence() if element.VR == "SQ" else None
    return DataElement(element.tag, element.VR, value, validation_mode=pydicom_config.IGNORE)
