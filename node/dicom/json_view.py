"""A dataset as Orthanc's tag JSON: full, short (hex keys) or simplified (names).

Values are rendered by :func:`.tags.shown_text`, as for main DICOM tags, so that a
value reads the same in /tags, /shared-tags and MainDicomTags.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydicom import datadict
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset

from .dictionary import is_private_group, private_name
from .tag_numbers import PIXEL_DATA, PIXEL_REPRESENTATION
from .tags import UNKNOWN_NAME, TextReader, format_tag, raw_vr, tag_name, too_long


class TagFormat(Enum):
    FULL = "full"
    SHORT = "short"
    SIMPLIFY = "simplify"


def _private_creator(dataset: Dataset, tag: int) -> str | None:
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0 or element < 0x1000:  # public, or a creator slot / group length: no creator
        return None
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag in dataset:
        return str(dataset[creator_tag].value)
    return None


def _name(dataset: Dataset, tag: int) -> str:
    """Keyword of a public tag; for a private one, its Dictionary name under its block's creator."""
    if (tag >> 16) % 2 == 1:
        return private_name(tag, _private_creator(dataset, tag)) or UNKNOWN_NAME
    return tag_name(tag)


# Tags of the dictionary that may be US or SS whose VR Orthanc settles, in an implicit VR
# dataset, from the PixelRepresentation of the same dataset (item); it shows the others, and
# these without a PixelRepresentation beside them, as binary (null).
_SETTLED_BY_PIXEL_REPRESENTATION = frozenset(
    [0x00280106, 0x00280107, 0x00280108, 0x00280109, 0x00280120, 0x00280121, 0x00283002,
     0x00409211, 0x00409216, 0x00603004, 0x00603006]
)  # fmt: skip
_US_OR_SS = "US or SS"
_FIRST_DATA_ELEMENT = 0x1000  # of a private block: below are its creator slots and group length


def _implicit_vr(dataset: Dataset) -> bool:
    return getattr(dataset, "original_encoding", (None, None))[0] is True


def _shown_as_binary(dataset: Dataset, tag: int) -> bool:
    """An element whose VR an implicit VR dataset leaves open, and that Orthanc then reads as
    unknown bytes: a private data element its dictionaries cannot name, or a US-or-SS value
    that no PixelRepresentation settles."""
    if not _implicit_vr(dataset):
        return False
    if is_private_group(tag >> 16):
        return (tag & 0xFFFF) >= _FIRST_DATA_ELEMENT and private_name(tag, _private_creator(dataset, tag)) is None
    if datadict.DicomDictionary.get(tag, ("",))[0] != _US_OR_SS:
        return False
    return tag not in _SETTLED_BY_PIXEL_REPRESENTATION or PIXEL_REPRESENTATION not in dataset


def _leaf(text: str | None, tag: int, ignore_length: frozenset[int]) -> tuple[str, Any]:
    if tag == PIXEL_DATA or text is None:
        return "Null", None
    if too_long(text) and tag not in ignore_length:
        return "TooLong", None
    return "String", text


def _sequence(dataset: Dataset, tag: int, element: RawDataElement | DataElement) -> DataElement | None:
    """The element decoded if it is a sequence, else None; raw values that cannot be one stay raw."""
    if isinstance(element, RawDataElement) and raw_vr(element) not in (None, "SQ", "UN"):
        return None
    decoded = dataset[tag]
    return decoded if decoded.VR == "SQ" else None


def _to_json(
    dataset: Dataset, fmt: TagFormat, ignore_length: frozenset[int], reader: TextReader, codec: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    elements = dict(dataset.items())
    for tag in sorted(elements):
        if tag > PIXEL_DATA:
            break
        element = elements[tag]
        sequence = _sequence(dataset, tag, element)
        if sequence is not None:
            kind = "Sequence"
            items = sequence.value or []
            value: Any = [_to_json(item, fmt, ignore_length, reader, reader.codec_for(item)) for item in items]
        elif _shown_as_binary(dataset, tag):
            kind, value = "Null", None
        else:
            kind, value = _leaf(reader.text(dataset, element, codec), tag, ignore_length)
        if fmt is TagFormat.SIMPLIFY:
            # Keyed by name, as Orthanc: tags it cannot name share one key, the last one's value.
            out[_name(dataset, tag)] = value
        elif fmt is TagFormat.SHORT:
            out[format_tag(tag)] = value
        else:
            entry: dict[str, Any] = {"Name": _name(dataset, tag), "Type": kind, "Value": value}
            creator = _private_creator(dataset, tag) if sequence is None else None  # none on sequences
            if creator is not None:
                entry["PrivateCreator"] = creator
            out[format_tag(tag)] = entry
    return out


def dataset_to_json(
    dataset: Dataset, fmt: TagFormat = TagFormat.FULL, ignore_length: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """Every element up to PixelData, in the requested Orthanc format.

    Values read as written where pydicom would lose something (see :class:`.tags.TextReader`).
    Nested items are decoded with the character set of the top-level dataset, as Orthanc does.
    """
    reader = TextReader(dataset)
    return _to_json(dataset, fmt, ignore_length, reader, reader.codec)


def tags_json_by_key(tags: dict[str, str], fmt: TagFormat) -> dict[str, Any]:
    """Main DICOM tags (stored as `gggg,eeee` → value) in the requested format."""
    if fmt is TagFormat.SHORT:
        return dict(tags)
    out: dict[str, Any] = {}
    for key, value in tags.items():
        tag = int(key.replace(",", ""), 16)
        if fmt is TagFormat.SIMPLIFY:
            out[tag_name(tag)] = value
        else:
            out[key] = {"Name": tag_name(tag), "Type": "String", "Value": value}
    return out
