"""Turn the bytes of a received DICOM file into what the index needs to know."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

import pydicom
from pydicom import filereader
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PrivateTransferSyntaxes,
)
from pydicom.values import convert_SQ, converters

from ..errors import ErrorCode, OrthancError
from ..nesting import MAX_SEQUENCE_DEPTH
from .ids import Level, OrthancIds, hierarchy_ids
from .plain_reader import Element, PlainFile, read_plain
from .tag_numbers import (
    CARDIAC_NUMBER_OF_IMAGES,
    DOUBLE_FLOAT_PIXEL_DATA,
    FLOAT_PIXEL_DATA,
    IMAGE_INDEX,
    IMAGES_IN_ACQUISITION,
    INSTANCE_NUMBER,
    NUMBER_OF_SLICES,
    NUMBER_OF_TEMPORAL_POSITIONS,
    NUMBER_OF_TIME_SLICES,
    PATIENT_ID,
    PIXEL_DATA,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_INSTANCE_UID,
    TRANSFER_SYNTAX_UID,
)
from .tags import (
    DECODE,
    NeedsPydicom,
    TextReader,
    charset_of_value,
    dictionary_vr,
    identifier,
    identifier_at,
    identifier_text,
    level_tags,
    main_tags,
    raw_shown_text,
    raw_vr,
    value_text,
)

# Parse errors raised by pydicom on malformed input, beyond its own InvalidDicomError. A value
# pydicom cannot convert raises BytesLengthException (wrong length for its VR) or
# NotImplementedError (unknown VR); an element header cut short in a sequence, struct.error.
_PARSE_ERRORS = (
    InvalidDicomError, EOFError, ValueError, KeyError, TypeError, IndexError, OverflowError, OSError,
    BytesLengthException, NotImplementedError, struct.error,
)  # fmt: skip
# VRs whose conversion by pydicom cannot fail: text (undecodable bytes are replaced) and binary.
_ALWAYS_CONVERTIBLE = frozenset(
    ["AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR", "SH", "LO", "ST", "LT", "UC", "UT", "PN",
     "OB", "OD", "OF", "OL", "OW", "OV"]
)  # fmt: skip


_UNDEFINED_LENGTH = 0xFFFFFFFF
# First group of a dataset sent without its Part-10 header: meta group without preamble, or identification.
_BARE_DATASET_GROUPS = (0x0002, 0x0008)
# (implicit VR, little endian) as detected by pydicom -> transfer syntax.
_DETECTED_SYNTAX: dict[tuple[bool | None, bool | None], UID] = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def _check_complete(dataset: Dataset) -> None:
    """pydicom keeps a value cut short by the end of the file: refuse it."""
    if not dataset:
        return
    raw = dataset.get_item(list(dataset.keys())[-1])  # only the last value can be cut short
    length = getattr(raw, "length", None)
    value = getattr(raw, "value", None)
    if isinstance(value, bytes) and length not in (None, _UNDEFINED_LENGTH) and len(value) < length:
        raise EOFError("value truncated by the end of the file")


def _refuse(size: int, details: str = "") -> OrthancError:
    return OrthancError(
        ErrorCode.BAD_FILE_FORMAT, details or f"Cannot parse an invalid DICOM file (size: {size} bytes)"
    )


def _too_deep(size: int) -> OrthancError:
    return _refuse(
        size,
        f"Cannot parse an invalid DICOM file (size: {size} bytes): "
        f"sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels",
    )


@contextmanager
def parse_errors(size: int) -> Iterator[None]:
    """Map what pydicom raises on malformed input to Orthanc's error 15.

    pydicom reads a sequence of undefined length, and what it nests, as it meets it, by
    recursion: a file deep enough stops it with RecursionError, refused like any file
    nested too deeply.
    """
    try:
        yield
    except RecursionError as exc:
        raise _too_deep(size) from exc
    except _PARSE_ERRORS as exc:
        raise _refuse(size) from exc


def _starts_like_dataset(data: bytes) -> bool:
    """A bare dataset (no preamble, no meta header) starting with a usual group, as DCMTK accepts."""
    return len(data) >= 8 and int.from_bytes(data[:2], "little") in _BARE_DATASET_GROUPS


_PREAMBLE = 128
_PIXEL_DATA_TAGS = frozenset([PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA, FLOAT_PIXEL_DATA])  # where stop_before_pixels stops
# Transfer syntax -> (implicit VR, little endian), for those read without decompression.
_ENCODINGS = {ImplicitVRLittleEndian: (True, True), ExplicitVRBigEndian: (False, False)}


def _outside_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in _PIXEL_DATA_TAGS


def _read_part10(data: bytes, stop_before_pixels: bool) -> FileDataset | None:
    """What dcmread gives for the usual file (preamble, meta header, plain transfer syntax),
    in half the time: the same pydicom readers without what only odd files need. None for
    anything else (deflated, private or missing transfer syntax, no dataset), left to dcmread.
    """
    if data[_PREAMBLE : _PREAMBLE + 4] != b"DICM":
        return None
    buffer = io.BytesIO(data)
    buffer.seek(_PREAMBLE + 4)
    raw_meta = filereader.read_dataset(buffer, is_implicit_VR=False, is_little_endian=True, stop_when=_outside_meta)
    syntax = raw_meta.get_item(TRANSFER_SYNTAX_UID)
    if any(e.VR not in converters for e in raw_meta.values()) or syntax is None or buffer.tell() == len(data):
        return None
    file_meta = FileMetaDataset(raw_meta)
    file_meta.set_original_encoding(False, True, default_encoding)
    uid = file_meta.TransferSyntaxUID
    if uid == DeflatedExplicitVRLittleEndian or uid in PrivateTransferSyntaxes:
        return None
    implicit, little = _ENCODINGS.get(uid, (False, True))
    stop = _at_pixels if stop_before_pixels else None
    body = filereader.read_dataset(buffer, implicit, little, stop_when=stop)
    dataset = FileDataset(buffer, body, data[:_PREAMBLE], file_meta, implicit, little)
    dataset.set_original_encoding(implicit, little, body.original_character_set)
    return dataset


def _load(data: bytes, stop_before_pixels: bool) -> Dataset:
    """dcmread, values left undecoded: call inside :func:`parse_errors`.

    Orthanc also accepts a dataset without its Part-10 header, stored as received;
    its transfer syntax is then the encoding the parser detected.
    """
    try:
        dataset = _read_part10(data, stop_before_pixels) or pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=stop_before_pixels
        )
    except InvalidDicomError:
        if not _starts_like_dataset(data):
            raise
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=True)
        if "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta.TransferSyntaxUID = _DETECTED_SYNTAX[dataset.original_encoding]
    _check_complete(dataset)  # while the last element is still raw
    return dataset


def check_values(dataset: Dataset, size: int) -> None:
    """Refuse what a view could not decode later, without decoding what cannot fail, and
    sequences nested deeper than MAX_SEQUENCE_DEPTH.

    Sequences are parsed (and kept parsed) down to the last item; other values are only
    converted, on a copy, when their VR or bytes leave a doubt. Raw values stay raw, so
    views still see them as written. Items wait in a list rather than on the call stack,
    so the depth of the file never becomes the depth of this walk.
    """
    _check_items([(dataset, 0)], size)


def _check_items(pending: list[tuple[Dataset, int]], size: int) -> None:
    """:func:`check_values` of each dataset of ``pending`` at its depth, and of what it nests."""
    while pending:
        current, depth = pending.pop()
        for element in current.values():
            if isinstance(element, RawDataElement):
                vr = raw_vr(element)
                if vr in _ALWAYS_CONVERTIBLE:
                    continue
                if vr != "SQ" and raw_shown_text(element, vr, None) is not DECODE:
                    continue  # numbers read from their bytes
                if vr != "SQ" and convert_raw_data_element(element, ds=current).VR != "SQ":
                    continue  # converted fine (or raised)
                element = current[element.tag]
            if isinstance(element, DataElement) and element.VR == "SQ" and element.value:
                if depth == MAX_SEQUENCE_DEPTH:
                    raise _too_deep(size)
                pending.extend((item, depth + 1) for item in element.value)


def _validate(dataset: Dataset, size: int) -> None:
    """A broken file fails here, not in a later view."""
    check_values(dataset, size)
    if "TransferSyntaxUID" not in dataset.file_meta:
        raise _refuse(size)


def _check_not_empty(data: bytes) -> None:
    if not data:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Received an empty DICOM file")


def read_dataset(data: bytes, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse a Part-10 file (preamble optional) or a bare dataset, or raise Orthanc's error 15."""
    _check_not_empty(data)
    with parse_errors(len(data)):
        dataset = _load(data, stop_before_pixels)
        _validate(dataset, len(data))
    return dataset


# Reads an identifier of the file by tag (see tags.identifier); None when absent.
IdentifierOf = Callable[[int], "str | None"]


def _index_in_series(identifier_of: IdentifierOf) -> str | None:
    for tag in (INSTANCE_NUMBER, IMAGE_INDEX):
        value = identifier_of(tag)
        if value:
            return value.strip()
    return None


def _int_tag(identifier_of: IdentifierOf, tag: int) -> int | None:
    value = identifier_of(tag)
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def expected_instances(identifier_of: IdentifierOf) -> int | None:
    """ExpectedNumberOfInstances of a series, when the tags allow computing it."""
    pairs = ((IMAGES_IN_ACQUISITION, NUMBER_OF_TEMPORAL_POSITIONS), (NUMBER_OF_SLICES, NUMBER_OF_TIME_SLICES))
    for a, b in pairs:
        x, y = _int_tag(identifier_of, a), _int_tag(identifier_of, b)
        if x is not None and y is not None:
            return x * y
    cardiac = _int_tag(identifier_of, CARDIAC_NUMBER_OF_IMAGES)
    return cardiac if cardiac and cardiac > 0 else None


@dataclass
class ParsedInstance:
    """A received instance: its identifiers, main tags and automatic metadata."""

    data: bytes
    dicom_ids: tuple[str, str, str, str]
    ids: OrthancIds
    tags: dict[Level, dict[str, str]] = field(default_factory=dict)
    transfer_syntax: str = ""
    sop_class_uid: str = ""
    index_in_series: str | None = None
    pixel_data_offset: int | None = None
    expected_instances: int | None = None


@dataclass(frozen=True)
class _Described:
    """How :func:`_describe` reads a file, by whichever reader read it."""

    identifier_of: IdentifierOf
    main_tags: Callable[[], dict[Level, dict[str, str]]]
    transfer_syntax: str
    pixel_data_offset: int | None  # where the value of Pixel Data starts, if read raw


def _describe(data: bytes, file: _Described) -> ParsedInstance:
    """What the index needs of a file; errors 21 / 15 when its identifiers are missing."""
    uids = [file.identifier_of(tag) for tag in (STUDY_INSTANCE_UID, SERIES_INSTANCE_UID, SOP_INSTANCE_UID)]
    if None in uids:
        raise OrthancError(ErrorCode.INEXISTENT_TAG)
    if "" in uids:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
    patient = file.identifier_of(PATIENT_ID) or ""
    dicom_ids = (patient, uids[0] or "", uids[1] or "", uids[2] or "")
    return ParsedInstance(
        data=data,
        dicom_ids=dicom_ids,
        ids=hierarchy_ids(*dicom_ids),
        tags=file.main_tags(),
        transfer_syntax=file.transfer_syntax,
        sop_class_uid=file.identifier_of(SOP_CLASS_UID) or "",
        index_in_series=_index_in_series(file.identifier_of),
        pixel_data_offset=file.pixel_data_offset,
        expected_instances=expected_instances(file.identifier_of),
    )


def describe_instance(data: bytes, dataset: Dataset) -> ParsedInstance:
    """What the index needs of a file read by :func:`read_dataset`; errors 21 / 15 when its
    identifiers are missing."""
    reader = TextReader(dataset)
    pixel = dataset.get_item(PIXEL_DATA)
    return _describe(
        data,
        _Described(
            identifier_of=partial(identifier_at, dataset),
            main_tags=partial(main_tags, dataset, reader),
            transfer_syntax=str(dataset.file_meta.TransferSyntaxUID),
            pixel_data_offset=pixel.value_tell if isinstance(pixel, RawDataElement) else None,
        ),
    )


# -- the plain file, read without pydicom's reader ------------------------------------------


class _Undecided(Exception):
    """Only pydicom can tell: the file is read by :func:`read_dataset`."""


def _check_plain(plain: PlainFile, size: int) -> None:
    """:func:`_validate` of the top-level elements read by :func:`read_plain`; the items of their
    sequences are read and checked as :func:`check_values` does."""
    items: list[tuple[Dataset, int]] = []
    for tag, element in plain.elements.items():
        if isinstance(element, DataElement):  # a sequence read already
            items.extend((item, 1) for item in element.value)
            continue
        vr, value, start = element
        if vr is None:
            vr = dictionary_vr(tag)
        if vr in _ALWAYS_CONVERTIBLE:
            continue
        if vr == "SQ":
            sequence = value if isinstance(value, bytes) else b""  # never a bulk view: SQ is not bulk
            items.extend((item, 1) for item in convert_SQ(sequence, plain.implicit, True, plain.encodings, start))
        elif value_text(tag, vr, value, None) is DECODE:  # DECODE too when the VR is unknown
            raise _Undecided
    _check_items(items, size)


def _plain_identifier(elements: Mapping[int, Element], tag: int) -> str | None:
    element = elements.get(tag)
    if element is None:
        return None
    if isinstance(element, DataElement):
        raise _Undecided
    vr, value, _ = element
    text = identifier_text(tag, vr if vr is not None else dictionary_vr(tag), value)
    if text is DECODE:
        raise _Undecided
    return text  # type: ignore[return-value]


def _plain_text(reader: TextReader, tag: int, element: Element) -> str | None:
    """:meth:`TextReader.raw_text` of an element read by :func:`read_plain`."""
    if isinstance(element, DataElement):
        raise _Undecided
    vr, value, _ = element
    text = reader.value_text(tag, vr if vr is not None else dictionary_vr(tag), value, reader.codec)
    if text is DECODE:
        raise _Undecided
    return text  # type: ignore[return-value]


def _plain_charset(element: Element | None) -> str | NeedsPydicom | None:
    """:func:`raw_charset` of an element read by :func:`read_plain`."""
    if element is None:
        return None
    return charset_of_value(element[1]) if isinstance(element, tuple) else DECODE


def _raw_offset(element: Element | None) -> int | None:
    """Where the value of an element read by :func:`read_plain` starts, if pydicom's path keeps it
    raw: it converts a sequence while checking the file, and an empty value (None, which it
    takes for one not read yet) when the element is looked up."""
    if isinstance(element, tuple) and element[0] != "SQ" and element[1] is not None:
        return element[2]
    return None


def describe_plain(data: bytes) -> ParsedInstance | None:
    """:func:`parse_instance` of a plain file (see :mod:`.plain_reader`) whose values all read
    from their bytes; None when pydicom must read the file, which then decides."""
    try:
        plain = read_plain(data)
        if plain is None:
            return None
        _check_plain(plain, len(data))
        elements = plain.elements
        charset = _plain_charset(elements.get(SPECIFIC_CHARACTER_SET))
        if charset is DECODE:
            return None
        pixel = elements.get(PIXEL_DATA)
        described = _Described(
            identifier_of=partial(_plain_identifier, elements),
            main_tags=partial(level_tags, elements, partial(_plain_text, TextReader.of_charset(charset))),  # type: ignore[arg-type]
            transfer_syntax=plain.transfer_syntax,
            pixel_data_offset=_raw_offset(pixel),
        )
        return _describe(data, described)
    except (_Undecided, OrthancError, RecursionError, *_PARSE_ERRORS):
        return None  # refusing the file, or why, is for pydicom's path to say


def parse_instance(data: bytes) -> ParsedInstance:
    """The description of a received file, or Orthanc's error 15 (or 21) for one it refuses."""
    return describe_plain(data) or describe_instance(data, read_dataset(data))


def sop_identity(dataset: Dataset) -> tuple[str, str]:
    """(SOPClassUID, SOPInstanceUID) of a dataset, "" when absent: what the C-STORE SCP compares
    with its command before storing."""
    return identifier(dataset, "SOPClassUID") or "", identifier(dataset, "SOPInstanceUID") or ""
