"""Tag names, main DICOM tags per level, and value formatting shared by every view."""

from __future__ import annotations

import re
from typing import Any

from pydicom import datadict
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag

from ..errors import ErrorCode, OrthancError
from .dictionary import entry_for_name
from .ids import Level

PATIENT_TAGS = (0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00101000)
STUDY_TAGS = (
    0x00080020, 0x00080030, 0x00200010, 0x00081030, 0x00080050, 0x0020000D,
    0x00321060, 0x00080080, 0x00321032, 0x00080090,
)  # fmt: skip
SERIES_TAGS = (
    0x00080021, 0x00080031, 0x00080060, 0x00080070, 0x00081010, 0x0008103E,
    0x00180015, 0x00180024, 0x00181030, 0x00200011, 0x00181090, 0x00201002,
    0x00200105, 0x00540081, 0x00540101, 0x0020000E, 0x00200037, 0x00541000,
    0x00081070, 0x00400254, 0x00181400, 0x00180010,
)  # fmt: skip
INSTANCE_TAGS = (
    0x00080012, 0x00080013, 0x00200012, 0x00541330, 0x00200013, 0x00280008,
    0x00200100, 0x00080018, 0x00200032, 0x00204000, 0x00200037,
)  # fmt: skip

MAIN_TAGS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: PATIENT_TAGS,
    Level.STUDY: STUDY_TAGS,
    Level.SERIES: SERIES_TAGS,
    Level.INSTANCE: INSTANCE_TAGS,
}

TEXT_VRS = frozenset(
    ["AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"]
)
NUMERIC_VRS = frozenset(["US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"])
WILDCARD_VRS = frozenset(["AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"])
TOO_LONG = 256


def format_tag(tag: int) -> str:
    """`gggg,eeee` in lower-case hex, the key of Orthanc's JSON."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


UNKNOWN_NAME = "Unknown Tag & Data"
RETIRED_PREFIX = "RETIRED_"
# Retired by the standard, yet named without the prefix by Orthanc 1.10.1: OtherPatientIDs (a main
# tag), and tags retired after the DCMTK 3.6.7 dictionary it uses.
_NOT_RETIRED_IN_ORTHANC = frozenset(
    [0x00101000, 0x00380004, 0x00701807, 0x00701808, 0x30040010, 0x30040012, 0x30060085, 0x30060088,
     0x3008002B, 0x30100090]
)  # fmt: skip


def _is_retired(tag: int) -> bool:
    return datadict.dictionary_is_retired(tag) and tag not in _NOT_RETIRED_IN_ORTHANC


def tag_name(tag: int) -> str:
    """The name Orthanc gives a public tag: its keyword, `RETIRED_` first for a retired one."""
    keyword = datadict.keyword_for_tag(tag)
    if not keyword:
        return UNKNOWN_NAME
    return RETIRED_PREFIX + keyword if _is_retired(tag) else keyword


_HEX_TAG = re.compile(r"^([0-9A-Fa-f]{4})[,\-]?([0-9A-Fa-f]{4})$")


def parse_tag(text: str) -> BaseTag:
    """A tag named by keyword, by a name of the Dictionary option or by hex (`0010,0010`, `0010-0010`, `00100010`)."""
    match = _HEX_TAG.match(text.strip())
    if match:
        return Tag(int(match.group(1), 16), int(match.group(2), 16))
    name = text.strip()
    tag = datadict.tag_for_keyword(name)
    if tag is None and name.startswith(RETIRED_PREFIX):  # the names tag_name() gives
        retired = datadict.tag_for_keyword(name.removeprefix(RETIRED_PREFIX))
        tag = retired if retired is not None and tag_name(retired) == name else None
    if tag is None:
        entry = entry_for_name(name)  # private tags of the Dictionary option
        if entry is None:
            raise OrthancError(ErrorCode.UNKNOWN_DICOM_TAG, f"Unknown DICOM tag: {text}")
        tag = entry.tag
    return Tag(tag)


def _scalar_text(value: Any) -> str:
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def element_text(element: DataElement) -> str | None:
    """The decoded value as text: multi-values joined by `\\`.

    None for binary values and sequences, which Orthanc reports as null. Views show
    values with :func:`shown_text`, which adds what decoding loses.
    """
    vr = element.VR
    if vr == "SQ" or (vr not in TEXT_VRS and vr not in NUMERIC_VRS and vr != "AT"):
        return None
    value = element.value
    if value is None:
        return ""
    if vr == "AT":
        items = value if isinstance(value, (list, MultiValue)) else [value]
        return "\\".join(format_tag(int(v)) for v in items)
    if isinstance(value, (list, MultiValue)):
        return "\\".join(_scalar_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip(" \0")
    return _scalar_text(value)


def too_long(text: str) -> bool:
    """Orthanc leaves out of main tags, and shows as TooLong, values over 256 bytes of UTF-8."""
    return len(text.encode("utf-8")) > TOO_LONG


# Orthanc decodes ISO_IR 13 (JIS X 0201) with its Roman half, where 0x5C is the yen sign and
# 0x7E the overline, value separators included: multi-valued strings show `¥` between values.
_JIS_X0201_ROMAN = str.maketrans({"\\": "\u00a5", "~": "\u203e"})


def text_translation(dataset: Dataset) -> dict[int, str] | None:
    """What the dataset's character set changes in every text value it holds (nested items too)."""
    charset = dataset.get("SpecificCharacterSet")
    if isinstance(charset, (list, MultiValue)) and len(charset) == 1:
        charset = charset[0]
    return _JIS_X0201_ROMAN if charset == "ISO_IR 13" else None


def _as_written(text: str, vr: str, raw: Any) -> str:
    """What pydicom's decoding drops and Orthanc shows: empty trailing name groups
    (`Wang^XiaoDong=王^小東=`), and the spaces of AE values other than the last trailing ones.

    Only visible while the element is still raw (not decoded yet).
    """
    value = getattr(raw, "value", None)
    if not isinstance(value, bytes):
        return text
    stripped = value.rstrip(b" \0")
    if vr == "AE":
        return stripped.decode("latin-1")
    return text.rstrip("=") + "=" * (len(stripped) - len(stripped.rstrip(b"=")))


def shown_text(element: DataElement, raw: Any, translation: dict[int, str] | None) -> str | None:
    """A value as every view shows it (main tags, /tags, shared tags), None when not text.

    ``raw`` is what ``dataset.get_item(tag)`` returned before ``element`` was decoded;
    ``translation`` comes from :func:`text_translation` of the top-level dataset.
    """
    text = element_text(element)
    if text is None:
        return None
    if element.VR in ("PN", "AE"):
        text = _as_written(text, element.VR, raw)
    if translation is not None and element.VR in TEXT_VRS:
        text = text.translate(translation)
    return text


def main_tags(dataset: Dataset, level: Level) -> dict[str, str]:
    """Main DICOM tags of one level, keyed `gggg,eeee`; absent and too long values are left out.

    Called before the dataset's values are decoded, it sees them as written.
    """
    found: dict[str, str] = {}
    translation = text_translation(dataset)
    for tag in MAIN_TAGS[level]:
        if tag not in dataset:
            continue
        raw = dataset.get_item(tag)
        text = shown_text(dataset[tag], raw, translation)
        if text is not None and not too_long(text):
            found[format_tag(tag)] = text
    return found


def identifier(dataset: Dataset, keyword: str) -> str | None:
    """An identifier with trailing padding removed; None when the tag is absent."""
    if keyword not in dataset:
        return None
    text = element_text(dataset[keyword])
    return (text or "").rstrip(" \0")
