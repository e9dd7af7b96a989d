"""Turn the bytes of a received DICOM file into what the index needs to know."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ..errors import ErrorCode, OrthancError
from .ids import Level, hierarchy_ids
from .tags import identifier, main_tags

# Parse errors raised by pydicom on malformed input, beyond its own InvalidDicomError.
_PARSE_ERRORS = (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, IndexError, OverflowError, OSError)


_UNDEFINED_LENGTH = 0xFFFFFFFF
# First group of a dataset sent without its Part-10 header: meta group without preamble, or identification.
_BARE_DATASET_GROUPS = (0x0002, 0x0008)
# (implicit VR, little endian) as detected by pydicom -> transfer syntax.
_DETECTED_SYNTAX = {
    (True, True): ImplicitVRLittleEndian,
    (False, True): ExplicitVRLittleEndian,
    (False, False): ExplicitVRBigEndian,
}


def _check_complete(dataset: Dataset) -> None:
    """pydicom keeps a value cut short by the end of the file: refuse it."""
    for tag in reversed(dataset.keys()):
        raw = dataset.get_item(tag)
        length = getattr(raw, "length", None)
        value = getattr(raw, "value", None)
        if isinstance(value, bytes) and length not in (None, _UNDEFINED_LENGTH) and len(value) < length:
            raise EOFError("value truncated by the end of the file")
        return


def _refuse(size: int, details: str = "") -> OrthancError:
    return OrthancError(
        ErrorCode.BAD_FILE_FORMAT, details or f"Cannot parse an invalid DICOM file (size: {size} bytes)"
    )


@contextmanager
def _parse_errors(size: int) -> Iterator[None]:
    """Map what pydicom raises on malformed input to Orthanc's error 15."""
    try:
        yield
    except RecursionError as exc:
        raise _refuse(
            size, f"Cannot parse an invalid DICOM file (size: {size} bytes): sequences nested too deeply"
        ) from exc
    except _PARSE_ERRORS as exc:
        raise _refuse(size) from exc


def _starts_like_dataset(data: bytes) -> bool:
    """A bare dataset (no preamble, no meta header) starting with a usual group, as DCMTK accepts."""
    return len(data) >= 8 and int.from_bytes(data[:2], "little") in _BARE_DATASET_GROUPS


def _load(data: bytes, stop_before_pixels: bool) -> Dataset:
    """dcmread, values left undecoded: call inside :func:`_parse_errors`.

    Orthanc also accepts a dataset without its Part-10 header, stored as received;
    its transfer syntax is then the encoding the parser detected.
    """
    try:
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        if not _starts_like_dataset(data):
            raise
        dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=stop_before_pixels, force=True)
        if "TransferSyntaxUID" not in dataset.file_meta:
            dataset.file_meta.TransferSyntaxUID = _DETECTED_SYNTAX[dataset.original_encoding]
    _check_complete(dataset)  # while the last element is still raw
    return dataset


def _validate(dataset: Dataset, size: int) -> None:
    """Decode every value now, so that a broken file fails here and not in a later view."""
    for _ in dataset.iterall():
        pass
    if "TransferSyntaxUID" not in dataset.file_meta:
        raise _refuse(size)


def _check_not_empty(data: bytes) -> None:
    if not data:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Received an empty DICOM file")


def read_dataset(data: bytes, *, stop_before_pixels: bool = False) -> Dataset:
    """Parse a Part-10 file (preamble optional) or a bare dataset, or raise Orthanc's error 15."""
    _check_not_empty(data)
    with _parse_errors(len(data)):
        dataset = _load(data, stop_before_pixels)
        _validate(dataset, len(data))
    return dataset


def _index_in_series(dataset: Dataset) -> str | None:
    for keyword in ("InstanceNumber", "ImageIndex"):
        value = identifier(dataset, keyword)
        if value:
            return value.strip()
    return None


def _int_tag(dataset: Dataset, keyword: str) -> int | None:
    value = identifier(dataset, keyword)
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def expected_instances(dataset: Dataset) -> int | None:
    """ExpectedNumberOfInstances of a series, when the tags allow computing it."""
    pairs = (("ImagesInAcquisition", "NumberOfTemporalPositions"), ("NumberOfSlices", "NumberOfTimeSlices"))
    for a, b in pairs:
        x, y = _int_tag(dataset, a), _int_tag(dataset, b)
        if x is not None and y is not None:
            return x * y
    cardiac = _int_tag(dataset, "CardiacNumberOfImages")
    return cardiac if cardiac and cardiac > 0 else None


@dataclass
class ParsedInstance:
    """A received instance: its identifiers, main tags and automatic metadata."""

    data: bytes
    dataset: Dataset
    dicom_ids: tuple[str, str, str, str]
    ids: tuple[str, str, str, str]  # patient, study, series, instance Orthanc IDs
    tags: dict[Level, dict[str, str]] = field(default_factory=dict)
    transfer_syntax: str = ""
    sop_class_uid: str = ""
    index_in_series: str | None = None
    pixel_data_offset: int | None = None
    expected_instances: int | None = None


def parse_instance(data: bytes) -> ParsedInstance:
    _check_not_empty(data)
    with _parse_errors(len(data)):
        dataset = _load(data, stop_before_pixels=False)
        # Main tags first, while their raw bytes are still there (see tags.main_tags).
        tags = {level: main_tags(dataset, level) for level in Level}
        _validate(dataset, len(data))
    uids = [identifier(dataset, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    if any(u is None for u in uids):
        raise OrthancError(ErrorCode.INEXISTENT_TAG)
    if any(u == "" for u in uids):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")
    patient = identifier(dataset, "PatientID") or ""
    dicom_ids = (patient, uids[0] or "", uids[1] or "", uids[2] or "")
    pixel = dataset.get_item(0x7FE00010)
    offset = None
    if pixel is not None and getattr(pixel, "value_tell", None) is not None:
        offset = pixel.value_tell
    return ParsedInstance(
        data=data,
        dataset=dataset,
        dicom_ids=dicom_ids,
        ids=hierarchy_ids(*dicom_ids),
        tags=tags,
        transfer_syntax=str(dataset.file_meta.TransferSyntaxUID),
        sop_class_uid=identifier(dataset, "SOPClassUID") or "",
        index_in_series=_index_in_series(dataset),
        pixel_data_offset=offset,
        expected_instances=expected_instances(dataset),
    )


def sop_identity(data: bytes) -> tuple[str, str]:
    """(SOPClassUID, SOPInstanceUID) of a file, read without decoding the rest; "" when absent.

    Cheap enough for the C-STORE SCP to compare them with its command before storing.
    """
    _check_not_empty(data)
    with _parse_errors(len(data)):
        dataset = _load(data, stop_before_pixels=True)
        return identifier(dataset, "SOPClassUID") or "", identifier(dataset, "SOPInstanceUID") or ""
