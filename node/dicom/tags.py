"""Tag names, main DICOM tags per level, and value formatting shared by every view."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydicom import datadict
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag, Tag
from pydicom.valuerep import DSfloat

from ..errors import ErrorCode, OrthancError
from .dictionary import entry_for_name
from .ids import Level
from .tag_numbers import SPECIFIC_CHARACTER_SET

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
_GROUP_LENGTH_SIZE = 4


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


GROUP_LENGTH_NAME = "GenericGroupLength"


def tag_name(tag: int) -> str:
    """The name Orthanc gives a public tag: its keyword, `RETIRED_` first for a retired one.

    The length of a group (element 0000) that the standard does not name is named like any other.
    """
    keyword = datadict.keyword_for_tag(tag)
    if not keyword:
        return GROUP_LENGTH_NAME if tag & 0xFFFF == 0 else UNKNOWN_NAME
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
    """One value as text; binary floats (FL, FD) with 17 significant digits, as Orthanc prints
    them (`0.59999999999999998`), so that a value is as long, and as often TooLong, as there."""
    original = getattr(value, "original_string", None)
    if isinstance(original, str):
        return original
    if isinstance(value, float) and not isinstance(value, DSfloat):
        return f"{value:.17g}"
    return str(value)


def element_text(element: DataElement) -> str | None:
    """The decoded value as text: multi-values joined by `\\`.

    None for binary values and sequences, which Orthanc reports as null. Views show
    values with :func:`shown_text`, which adds what decoding loses.
    """
    vr = element.VR
    value = element.value
    if vr == "SQ" or (vr not in TEXT_VRS and vr not in NUMERIC_VRS and vr != "AT"):
        return None
    if value is None:
        return ""
    if vr == "AT":  # Orthanc shows the first tag only
        items = value if isinstance(value, (list, MultiValue)) else [value]
        return format_tag(int(items[0])) if items else ""
    if isinstance(value, (list, MultiValue)):
        return "\\".join(_scalar_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip(" \0")
    return _scalar_text(value)


_UTF8_MAX_BYTES = 4  # per code point


def too_long(text: str) -> bool:
    """Orthanc leaves out of main tags, and shows as TooLong, values over 256 bytes of UTF-8."""
    return len(text) * _UTF8_MAX_BYTES > TOO_LONG and len(text.encode("utf-8")) > TOO_LONG


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


# -- values read straight from their bytes ----------------------------------------------
#
# Decoding with pydicom costs some 15 µs per element; most values need no more than a
# byte decode and a strip to read exactly as pydicom would give them. The functions
# below do that and answer DECODE for anything else (other character sets, escape
# sequences, unusual numbers), which then goes through pydicom.


class NeedsPydicom:
    """Marker: this raw value must be decoded by pydicom."""


DECODE: Final = NeedsPydicom()
_ESC = 0x1B
# VRs decoded with the default character set whatever SpecificCharacterSet says (pydicom).
_PLAIN_STRING_VRS = frozenset(["AS", "CS", "DA", "DT", "TM"])
_CHARSET_VRS = frozenset(["SH", "LO", "UC", "ST", "LT", "UT", "PN"])
_SPLIT_VRS = frozenset(["SH", "LO", "UC"])  # split, each value stripped
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_NUMBER_SIZES = {vr: struct.calcsize(f) for vr, f in _NUMBER_FORMATS.items()}
# One value of each binary number VR, by (VR, little endian): the usual element holds one.
_ONE_NUMBER = {
    (vr, little): struct.Struct(("<" if little else ">") + f)
    for vr, f in _NUMBER_FORMATS.items()
    for little in (True, False)
}
_FLOAT_VRS = frozenset(["FL", "FD"])
_INTEGER_STRING = r" *[+-]?[0-9]+ *"
# Each digit has one way to match (no `[0-9]+\.?[0-9]*`), so that a long value fails in linear time.
_DECIMAL_STRING = r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})? *"


def _values_of(one: str) -> re.Pattern[str]:
    """Values separated by backslashes, each empty or matching ``one`` (which has no backslash)."""
    return re.compile(rf"(?:{one})?(?:\\(?:{one})?)*")


_NUMBER_STRINGS = {"IS": _values_of(_INTEGER_STRING), "DS": _values_of(_DECIMAL_STRING)}
# pydicom fixes the sign of the first value of these (hooks.raw_element_value).
_LUT_DESCRIPTORS = frozenset([0x00281101, 0x00281102, 0x00281103, 0x00283002])
# Character sets whose text pydicom decodes with one Python codec, non-ASCII bytes included.
_SIMPLE_CODECS = {"ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


def dictionary_vr(tag: int) -> str | None:
    """The VR pydicom gives an element written without one (implicit VR) without looking
    further: the public dictionary's; None when that takes more (private tags, unknown or
    ambiguous VRs)."""
    if tag & 0xFFFF == 0:  # the length of a group, written without its VR: always UL
        return "UL"
    entry = datadict.DicomDictionary.get(tag)
    if entry is None or " " in entry[0]:  # "US or SS": settled by pydicom from other elements
        return None
    return entry[0]


def raw_vr(raw: RawDataElement) -> str | None:
    """The VR pydicom would give a raw element without looking further (see :func:`dictionary_vr`)."""
    return raw.VR if raw.VR is not None else dictionary_vr(raw.tag)


def _string_values(text: str, pattern: re.Pattern[str]) -> str | NeedsPydicom:
    """IS and DS: pydicom keeps each value as written but for its surrounding spaces."""
    text = text.rstrip(" \0")
    if not pattern.fullmatch(text):
        return DECODE
    return "\\".join(p.strip(" ") for p in text.split("\\")) if " " in text else text


def _charset_text(value: bytes, vr: str, codec: str | None) -> str | NeedsPydicom:
    """Text of a VR decoded with the dataset's character set (``codec``; None: ASCII only)."""
    if _ESC in value:
        return DECODE
    if value.isascii():
        text = value.decode("ascii")
    elif codec is None:
        return DECODE
    else:
        try:
            text = value.decode(codec)
        except UnicodeDecodeError:
            return DECODE
    if vr in _SPLIT_VRS and "\\" in text:
        return "\\".join(v.rstrip("\0 ") for v in text.split("\\"))
    if vr == "PN":
        # One name as written: pydicom drops empty trailing groups, which Orthanc shows.
        text = text.rstrip("\0 ")
        return DECODE if "\\" in text else text
    return text.rstrip("\0 ")


# Each reads the shown text of a value of its VR: (value, VR, codec, tag, little endian) -> text.
_ValueReader = Callable[[bytes, str, "str | None", int, bool], "str | NeedsPydicom | None"]


def _read_plain_string(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str:
    return value.decode("latin-1").rstrip(" \0")


def _read_uid(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str:
    text = value.decode("latin-1").rstrip("\0 ")
    if "\\" not in text:
        return text.strip()
    return "\\".join(v.strip() for v in text.split("\\"))  # pydicom's UID strips each value


def _read_charset_text(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str | NeedsPydicom:
    return _charset_text(value, vr, codec)


def _read_ae(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str:
    return value.rstrip(b" \0").decode("latin-1")


def _read_number_string(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str | NeedsPydicom:
    return _string_values(value.decode("latin-1"), _NUMBER_STRINGS[vr])


def _read_number(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str | NeedsPydicom:
    size = len(value)
    if size % _NUMBER_SIZES[vr] or tag in _LUT_DESCRIPTORS:
        return DECODE
    if size == _NUMBER_SIZES[vr]:
        numbers: tuple[int | float, ...] = _ONE_NUMBER[vr, little].unpack(value)
    else:
        numbers = struct.unpack(f"{'<' if little else '>'}{size // _NUMBER_SIZES[vr]}{_NUMBER_FORMATS[vr]}", value)
    if vr in _FLOAT_VRS:
        return "\\".join(_scalar_text(n) for n in numbers)
    return "\\".join(map(str, numbers))


def _read_url(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> str:
    return value.decode("latin-1").rstrip()


def _undecided(value: bytes, vr: str, codec: str | None, tag: int, little: bool) -> NeedsPydicom:
    return DECODE


# The VRs missing here are binary (OB, OW...): not text.
_VALUE_READERS: dict[str, _ValueReader] = {
    **dict.fromkeys(_PLAIN_STRING_VRS, _read_plain_string),
    "UI": _read_uid,
    **dict.fromkeys(_CHARSET_VRS, _read_charset_text),
    "AE": _read_ae,
    **dict.fromkeys(_NUMBER_STRINGS, _read_number_string),
    **dict.fromkeys(_NUMBER_FORMATS, _read_number),
    "UR": _read_url,
    **dict.fromkeys(["AT", "UN", "SQ"], _undecided),
}


def value_text(tag: int, vr: str | None, value: object, codec: str | None, little: bool = True) -> str | NeedsPydicom | None:
    """:func:`shown_text` of an element's raw value, before any character-set translation;
    DECODE when only pydicom can tell. ``vr`` is :func:`raw_vr`, ``codec`` that of
    :class:`TextReader`."""
    if vr is None or not isinstance(value, bytes):
        return DECODE
    reader = _VALUE_READERS.get(vr)
    return None if reader is None else reader(value, vr, codec, tag, little)


def raw_shown_text(raw: RawDataElement, vr: str | None, codec: str | None) -> str | NeedsPydicom | None:
    """:func:`value_text` of a raw element."""
    return value_text(raw.tag, vr, raw.value, codec, raw.is_little_endian)


def _implicit_group_length(dataset: Dataset, element: DataElement) -> bool:
    """A group length of an implicit VR dataset that pydicom decoded as UN (it does so to the
    private ones when it looks for a block's creator): a UL, as its raw form reads."""
    value = element.value
    implicit = getattr(dataset, "original_encoding", (None, None))[0]
    return (
        implicit is True
        and element.VR == "UN"
        and element.tag & 0xFFFF == 0
        and isinstance(value, bytes)
        and len(value) == _GROUP_LENGTH_SIZE
    )


def decoded_copy(dataset: Dataset, raw: RawDataElement) -> DataElement:
    """A raw element of ``dataset`` decoded by pydicom, the dataset keeping it raw: what
    decoding drops (see :func:`_as_written`) stays there for the next reader."""
    decoded = dataset[raw.tag]
    dataset[raw.tag] = raw
    return decoded


def _charset_codec(charset: str | None) -> str | None:
    if charset is None:  # absent: pydicom's default, ISO 8859-1
        return "latin-1"
    return _SIMPLE_CODECS.get(charset)


class TextReader:
    """Reads the values of one dataset (and its items) as every view shows them.

    Values are taken from their raw bytes where that gives pydicom's result, and
    decoded by pydicom otherwise, so that a value reads the same everywhere.
    """

    def __init__(self, dataset: Dataset) -> None:
        charset = raw_charset(dataset.get_item(SPECIFIC_CHARACTER_SET))
        if charset is DECODE:
            self.codec: str | None = None
            self.translation = text_translation(dataset)
        else:
            self._known_charset(charset)  # type: ignore[arg-type]

    @classmethod
    def of_charset(cls, charset: str | None) -> TextReader:
        """The reader of a dataset whose single character set :func:`raw_charset` read."""
        reader = cls.__new__(cls)
        reader._known_charset(charset)
        return reader

    def _known_charset(self, charset: str | None) -> None:
        self.codec = _charset_codec(charset)
        self.translation = _JIS_X0201_ROMAN if charset == "ISO_IR 13" else None

    def codec_for(self, item: Dataset) -> str | None:
        """The codec for a nested item: its own SpecificCharacterSet is left to pydicom."""
        return None if SPECIFIC_CHARACTER_SET in item else self.codec

    def raw_text(self, element: RawDataElement, codec: str | None) -> str | NeedsPydicom | None:
        """The shown text of a raw element read from its bytes; DECODE when only pydicom can tell."""
        return self.value_text(element.tag, raw_vr(element), element.value, codec, element.is_little_endian)

    def value_text(
        self, tag: int, vr: str | None, value: object, codec: str | None, little: bool = True
    ) -> str | NeedsPydicom | None:
        """:meth:`raw_text` of an element's raw value (see :func:`value_text`)."""
        text = value_text(tag, vr, value, codec, little)
        if self.translation is not None and isinstance(text, str) and vr in TEXT_VRS:
            return text.translate(self.translation)
        return text

    def text(self, dataset: Dataset, element: RawDataElement | DataElement, codec: str | None) -> str | None:
        """The shown text of one element of ``dataset`` (None: not text)."""
        if isinstance(element, RawDataElement):
            text = self.raw_text(element, codec)
            if text is not DECODE:
                return text  # type: ignore[return-value]
            return shown_text(decoded_copy(dataset, element), element, self.translation)
        if _implicit_group_length(dataset, element):
            return str(int.from_bytes(element.value, "little"))
        return shown_text(element, element, self.translation)


def raw_charset(element: RawDataElement | DataElement | None) -> str | NeedsPydicom | None:
    """A dataset's single SpecificCharacterSet read raw, None when absent, DECODE otherwise."""
    if element is None:
        return None
    return charset_of_value(element.value) if isinstance(element, RawDataElement) else DECODE


def charset_of_value(value: object) -> str | NeedsPydicom:
    """:func:`raw_charset` of the raw value of a SpecificCharacterSet."""
    if not isinstance(value, bytes) or b"\\" in value:
        return DECODE
    return value.decode("latin-1").rstrip(" \0")


def main_tags(dataset: Dataset, reader: TextReader | None = None) -> dict[Level, dict[str, str]]:
    """Main DICOM tags of every level, keyed `gggg,eeee`; absent and too long values are left out."""
    text_reader = reader or TextReader(dataset)
    return level_tags(dict(dataset.items()), lambda _, element: text_reader.text(dataset, element, text_reader.codec))


def _merged(orders: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """Every tag of ``orders`` once, in an order that keeps the order of each."""
    pending = [list(order) for order in orders]
    merged: list[int] = []
    while any(pending):
        heads = [seq[0] for seq in pending if seq]
        tag = next((t for t in heads if not any(t in seq[1:] for seq in pending)), None)
        if tag is None:
            raise ValueError("two levels order their main tags differently")
        merged.append(tag)
        for seq in pending:
            if seq and seq[0] == tag:
                seq.pop(0)
    return tuple(merged)


_LEVELS: Final = tuple(Level)
# Each main tag with its rank in an order that keeps the order of every level (the order of the
# tags Orthanc lists), and where its value goes: (level, key) by level that shows it.
_MAIN_TAG_RANKS: Final = {tag: rank for rank, tag in enumerate(_merged(tuple(MAIN_TAGS.values())))}
_MAIN_TAG_PLACES: Final = {
    tag: tuple((level, format_tag(tag)) for level in _LEVELS if tag in MAIN_TAGS[level]) for tag in _MAIN_TAG_RANKS
}


def level_tags(elements: Mapping[int, Any], text: Callable[[int, Any], str | None]) -> dict[Level, dict[str, str]]:
    """:func:`main_tags` of the ``elements`` of a dataset, each read once by ``text`` (tag, element)."""
    found: dict[Level, dict[str, str]] = {level: {} for level in _LEVELS}
    for tag in sorted(_MAIN_TAG_RANKS.keys() & elements.keys(), key=_MAIN_TAG_RANKS.__getitem__):
        value = text(tag, elements[tag])
        if value is not None and not too_long(value):
            for level, key in _MAIN_TAG_PLACES[tag]:
                found[level][key] = value
    return found


def raw_identifier(element: RawDataElement | DataElement) -> str | NeedsPydicom:
    """:func:`identifier` read from the element's bytes; DECODE when only pydicom can tell."""
    if not isinstance(element, RawDataElement):
        return DECODE
    return identifier_text(element.tag, raw_vr(element), element.value, element.is_little_endian)


_AS_WRITTEN_VRS = frozenset(["PN", "AE"])  # read as written, not as decoded


def identifier_text(tag: int, vr: str | None, value: object, little: bool = True) -> str | NeedsPydicom:
    """:func:`raw_identifier` of an element's raw value (see :func:`value_text`)."""
    if vr in _AS_WRITTEN_VRS:
        return DECODE
    text = value_text(tag, vr, value, None, little)
    if isinstance(text, str):
        return text.rstrip(" \0")
    return "" if text is None else DECODE


def identifier(dataset: Dataset, keyword: str) -> str | None:
    """An identifier with trailing padding removed; None when the tag is absent."""
    tag = datadict.tag_for_keyword(keyword)
    return identifier_at(dataset, tag) if tag is not None else None


def identifier_at(dataset: Dataset, tag: int) -> str | None:
    """:func:`identifier` of a tag."""
    element = dataset.get_item(tag)
    if element is None:
        return None
    text = raw_identifier(element)
    if text is not DECODE:
        return text  # type: ignore[return-value]
    decoded = decoded_copy(dataset, element) if isinstance(element, RawDataElement) else element
    return (element_text(decoded) or "").rstrip(" \0")
