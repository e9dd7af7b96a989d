"""A dataset as Orthanc's tag JSON: full, short (hex keys) or simplified (names).

Values are rendered by :func:`.tags.shown_text`, as for main DICOM tags, so that a
value reads the same in /tags, /shared-tags and MainDicomTags.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from .dictionary import private_name
from .tags import UNKNOWN_NAME, format_tag, shown_text, tag_name, text_translation, too_long

PIXEL_DATA = 0x7FE00010


class TagFormat(Enum):
    FULL = "full"
    SHORT = "short"
    SIMPLIFY = "simplify"


def _private_creator(dataset: Dataset, element: DataElement) -> str | None:
    tag = element.tag
    if not tag.is_private or tag.element < 0x1000:  # creator slots and group lengths have no creator
        return None
    creator_tag = (tag.group << 16) | (tag.element >> 8)
    if creator_tag in dataset:
        return str(dataset[creator_tag].value)
    return None


def _name(dataset: Dataset, element: DataElement) -> str:
    """Keyword of a public tag; for a private one, its Dictionary name under its block's creator."""
    tag = int(element.tag)
    if element.tag.is_private:
        return private_name(tag, _private_creator(dataset, element)) or UNKNOWN_NAME
    return tag_name(tag)


def _leaf(
    element: DataElement, raw: Any, translation: dict[int, str] | None, ignore_length: frozenset[int]
) -> tuple[str, Any]:
    if element.tag == PIXEL_DATA:
        return "Null", None
    text = shown_text(element, raw, translation)
    if text is None:
        return "Null", None
    if too_long(text) and int(element.tag) not in ignore_length:
        return "TooLong", None
    return "String", text


def _to_json(
    dataset: Dataset, fmt: TagFormat, ignore_length: frozenset[int], translation: dict[int, str] | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in sorted(dataset.keys()):
        if tag > PIXEL_DATA:
            break
        raw = dataset.get_item(tag)  # before decoding: values as written
        element = dataset[tag]
        if element.VR == "SQ":
            kind = "Sequence"
            value: Any = [_to_json(item, fmt, ignore_length, translation) for item in element.value or []]
        else:
            kind, value = _leaf(element, raw, translation, ignore_length)
        if fmt is TagFormat.SIMPLIFY:
            name = _name(dataset, element)
            out[name if name != UNKNOWN_NAME else format_tag(tag)] = value
        elif fmt is TagFormat.SHORT:
            out[format_tag(tag)] = value
        else:
            entry: dict[str, Any] = {"Name": _name(dataset, element), "Type": kind, "Value": value}
            creator = _private_creator(dataset, element)
            if creator is not None:
                entry["PrivateCreator"] = creator
            out[format_tag(tag)] = entry
    return out


def dataset_to_json(
    dataset: Dataset, fmt: TagFormat = TagFormat.FULL, ignore_length: frozenset[int] = frozenset()
) -> dict[str, Any]:
    """Every element up to PixelData, in the requested Orthanc format.

    Nested items are decoded with the character set of the top-level dataset, as Orthanc does.
    """
    return _to_json(dataset, fmt, ignore_length, text_translation(dataset))


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
