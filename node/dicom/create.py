"""New DICOM instances built from JSON: tags, an embedded PDF or image (/tools/create-dicom).

Pure: the route resolves the parent and stores the result; everything here works on
the values it is given and raises OrthancError on bad input before anything exists.
"""

from __future__ import annotations

import copy
import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydicom import charset
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import EncapsulatedPDFStorage, generate_uid

from ..body_fields import boolean, json_object, optional_string, string
from ..errors import ErrorCode, OrthancError
from .dictionary import creator_slot, entry_for_name, is_creator_slot, is_private_group
from .ids import Level
from .json_elements import BINARY_VRS, check_shape, dataset_encodings, parse_data_uri, set_from_json, vr_for
from .modules import MODULE_TAGS
from .part10 import to_part10
from .tag_numbers import (
    ACQUISITION_DATE,
    ACQUISITION_TIME,
    CONTENT_DATE,
    CONTENT_TIME,
    ENCAPSULATED_DOCUMENT,
    INSTANCE_CREATION_DATE,
    INSTANCE_CREATION_TIME,
    PATIENT_ID,
    PIXEL_DATA,
    SERIES_DATE,
    SERIES_TIME,
    SPECIFIC_CHARACTER_SET,
    STUDY_DATE,
    STUDY_TIME,
)
from .tags import element_text, format_tag, parse_tag

PDF_MIME = "application/pdf"

# Module tags copied from one instance below the parent, by level of the parent.
_INHERITED = {
    Level.PATIENT: MODULE_TAGS[Level.PATIENT],
    Level.STUDY: MODULE_TAGS[Level.PATIENT] | MODULE_TAGS[Level.STUDY],
    Level.SERIES: MODULE_TAGS[Level.PATIENT] | MODULE_TAGS[Level.STUDY] | MODULE_TAGS[Level.SERIES],
}
# Tags a body may set even when generated or inherited.
_ALWAYS_SETTABLE = frozenset(
    [PATIENT_ID, ACQUISITION_DATE, ACQUISITION_TIME, CONTENT_DATE, CONTENT_TIME, INSTANCE_CREATION_DATE,
     INSTANCE_CREATION_TIME, SERIES_DATE, SERIES_TIME, STUDY_DATE, STUDY_TIME]
)  # fmt: skip

# Pillow modes accepted, and the mode each is stored as (alpha and palettes are flattened).
_IMAGE_MODES = {
    "L": "L", "LA": "L", "1": "L", "RGB": "RGB", "RGBA": "RGB", "P": "RGB", "CMYK": "RGB",
    "YCbCr": "RGB", "I;16": "I;16", "I;16B": "I;16", "I": "I;16",
}  # fmt: skip
_IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}


@dataclass(frozen=True)
class CreateRequest:
    """The body of /tools/create-dicom, checked for types."""

    tags: Mapping[str, Any]
    content: str | list[Any] | None = None
    parent: str | None = None
    interpret_binary: bool = True
    private_creator: str = ""
    force: bool = False
    legacy: bool = False  # flat body without "Tags": no dates, no parent


@dataclass(frozen=True)
class Parent:
    """An existing resource to attach to, and one instance read below it."""

    level: Level
    dataset: Dataset


@dataclass(frozen=True)
class Creation:
    """The files to store; ``series`` when Content was a list of items."""

    files: list[bytes]
    series: bool


def _wrong_type(key: str, kind: type) -> str:
    return f'The "{key}" field must be of type {kind.__name__}'


def parse_request(body: Any, default_private_creator: str) -> CreateRequest:
    """Check the shape of the body: with `Tags`, or the older flat form (tags only)."""
    body = json_object(body, ErrorCode.BAD_REQUEST, "The body must be a JSON object")
    if "Tags" not in body:
        if any(not isinstance(value, str) for value in body.values()):
            raise OrthancError(ErrorCode.CREATE_DICOM_NOT_STRING)
        return CreateRequest(tags=body, private_creator=default_private_creator, legacy=True)
    tags = json_object(body["Tags"], ErrorCode.BAD_REQUEST, _wrong_type("Tags", dict))
    content = body.get("Content")
    if content is not None and not isinstance(content, (str, list)):
        raise OrthancError(ErrorCode.CREATE_DICOM_USE_DATA_URI_SCHEME)
    bad_parent = "Parent must be the Orthanc ID of a resource"
    parent = optional_string(body.get("Parent"), ErrorCode.CREATE_DICOM_BAD_PARENT, bad_parent)
    return CreateRequest(
        tags=tags,
        content=content,
        parent=parent,
        interpret_binary=boolean(
            body.get("InterpretBinaryTags", True), ErrorCode.BAD_REQUEST, _wrong_type("InterpretBinaryTags", bool)
        ),
        private_creator=string(
            body.get("PrivateCreator", default_private_creator),
            ErrorCode.BAD_REQUEST,
            _wrong_type("PrivateCreator", str),
        ),
        force=boolean(body.get("Force", False), ErrorCode.BAD_REQUEST, _wrong_type("Force", bool)),
    )


def _known_character_set(value: str) -> bool:
    terms = [term.strip() for term in value.split("\\")]
    return any(terms) and all(term in charset.python_encoding for term in terms)


# --- Setting one tag from its JSON value --------------------------------------------------


class _TagWriter:
    """Sets tags from JSON values with the rules of one request (creators, data URIs).

    Values are converted by json_elements, the conversion /modify uses too; what is
    proper to create-dicom is here: refused overrides, PixelData, where creators come from.
    """

    def __init__(self, private_creator: str, interpret_binary: bool) -> None:
        self.private_creator = private_creator
        self.interpret_binary = interpret_binary

    def apply(self, dataset: Dataset, tags: Mapping[str, Any], *, force: bool = True) -> None:
        """Set every tag; without ``force``, refuse to replace a value already there (error 2020).

        Creator slots go first, so that a block's creator written in the same body is the
        one its private elements are attached to.
        """
        parsed = [(key, int(parse_tag(key)), value) for key, value in tags.items()]
        parsed.sort(key=lambda item: not is_creator_slot(item[1]))
        for key, tag, value in parsed:
            if tag == PIXEL_DATA:
                raise OrthancError(ErrorCode.CREATE_DICOM_USE_CONTENT)
            if not force and tag in dataset and tag not in _ALWAYS_SETTABLE:
                raise OrthancError(ErrorCode.CREATE_DICOM_OVERRIDE_TAG, key)
            self._set(dataset, tag, value, key)

    def _set(self, dataset: Dataset, tag: int, value: Any, key: str) -> None:
        check_shape(tag, value)
        creator = self._creator(dataset, tag, key)
        vr = vr_for(dataset, tag, creator)
        if isinstance(value, str) and vr in BINARY_VRS and not self.interpret_binary:
            dataset[tag] = DataElement(tag, vr, value.encode("utf-8"))
            return
        set_from_json(dataset, tag, value, dataset_encodings(dataset), creator)

    def _creator(self, dataset: Dataset, tag: int, key: str) -> str:
        """The creator of a private element's block, written into its slot when still empty."""
        if not is_private_group(tag >> 16) or (tag & 0xFFFF) < 0x1000:
            return ""
        slot = creator_slot(tag)
        if slot in dataset:
            return str(dataset[slot].value or "").strip()
        named = entry_for_name(key.strip())
        creator = self.private_creator or (named.private_creator if named else None) or ""
        if not creator:
            raise OrthancError(
                ErrorCode.BAD_REQUEST,
                f"No private creator for the private tag {format_tag(tag)}: give PrivateCreator, "
                f"set DefaultPrivateCreator or set the creator tag {format_tag(slot)}",
            )
        dataset[slot] = DataElement(slot, "LO", creator)
        return creator


# --- Embedding content ------------------------------------------------------------------


def _embed_pdf(dataset: Dataset, pdf: bytes) -> None:
    if not pdf.startswith(b"%PDF-"):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Not a PDF file")
    dataset.SOPClassUID = EncapsulatedPDFStorage
    for keyword, value in (("Modality", "OT"), ("ConversionType", "WSD"), ("MIMETypeOfEncapsulatedDocument", PDF_MIME)):
        if keyword not in dataset:
            setattr(dataset, keyword, value)
    # Values have an even length: an odd document gets one NUL, which /pdf removes.
    dataset.add_new(ENCAPSULATED_DOCUMENT, "OB", pdf + b"\0" * (len(pdf) % 2))


def _decode_image(data: bytes, mime: str) -> Image.Image:
    expected = _IMAGE_FORMATS[mime]
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot decode the {expected} image") from exc
    if image.format != expected:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"The content declared as {mime} is a {image.format} image")
    return image


def _embed_image(dataset: Dataset, data: bytes, mime: str) -> None:
    """Uncompressed pixels with the image pixel module that describes them."""
    image = _decode_image(data, mime)
    target = _IMAGE_MODES.get(image.mode)
    if target is None:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"Unsupported pixel format in the {mime} image: {image.mode}")
    if target == "I;16":
        pixels = image.tobytes("raw", "I;16")
        bits, samples = 16, 1
    else:
        pixels = image.convert(target).tobytes()
        bits, samples = 8, 3 if target == "RGB" else 1
    dataset.Columns, dataset.Rows = image.size
    dataset.SamplesPerPixel = samples
    if samples == 3:
        dataset.PhotometricInterpretation = "RGB"
        dataset.PlanarConfiguration = 0
    elif "PhotometricInterpretation" not in dataset:
        dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = bits
    dataset.HighBit = bits - 1
    dataset.PixelRepresentation = 0
    dataset.add_new(PIXEL_DATA, "OW", pixels + b"\0" * (len(pixels) % 2))


def embed_content(dataset: Dataset, data_uri: str) -> None:
    """Put a PDF or an image given as a data URI into the dataset."""
    mime, payload = parse_data_uri(data_uri)
    if mime == PDF_MIME:
        _embed_pdf(dataset, payload)
    elif mime in _IMAGE_FORMATS:
        _embed_image(dataset, payload, mime)
    else:
        raise OrthancError(
            ErrorCode.NOT_IMPLEMENTED, f"Unsupported MIME type for the content of a new DICOM file: {mime}"
        )


def extract_pdf(dataset: Dataset) -> bytes | None:
    """The PDF of an Encapsulated PDF instance, None for any other instance.

    A trailing NUL or space is the pad byte that makes the value even (PDFs end with
    `%%EOF` and maybe an end of line), so it is removed. Orthanc removes any last byte
    that is not CR/LF, which cuts the `F` of an even-length PDF without end of line.
    """
    if str(dataset.get("SOPClassUID", "")) != EncapsulatedPDFStorage:
        return None
    if str(dataset.get("MIMETypeOfEncapsulatedDocument", "")).strip() != PDF_MIME:
        return None
    document = dataset.get("EncapsulatedDocument")
    if not isinstance(document, bytes):
        return None
    return document[:-1] if document[-1:] in (b"\0", b" ") else document


# --- Building whole instances ------------------------------------------------------------


def _new_dataset(character_set: str | None) -> Dataset:
    dataset = Dataset()
    if character_set is not None:
        dataset.SpecificCharacterSet = character_set
    dataset.PatientID = str(uuid.uuid4())
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    return dataset


def _character_set(request: CreateRequest, parent: Parent | None, default: str) -> str:
    """The parent's, else the one of Tags, else the default encoding's (error 3 if unknown)."""
    if parent is not None and SPECIFIC_CHARACTER_SET in parent.dataset:
        value = element_text(parent.dataset[SPECIFIC_CHARACTER_SET]) or ""
        if not _known_character_set(value):
            raise OrthancError(ErrorCode.CREATE_DICOM_PARENT_ENCODING, value)
        return value
    value = request.tags.get("SpecificCharacterSet", default)
    if not isinstance(value, str) or not _known_character_set(value):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown specific character set: {value}")
    return value


def _inherit(dataset: Dataset, parent: Parent) -> None:
    for tag in _INHERITED[parent.level]:
        if tag in parent.dataset and parent.dataset[tag].VR != "SQ":
            dataset[tag] = copy.deepcopy(parent.dataset[tag])


def _set_dates(dataset: Dataset, parent: Parent | None, now: datetime) -> None:
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S") + f".{now.microsecond:06d}"
    prefixes = ["Acquisition", "Content", "InstanceCreation"]
    if parent is None or parent.level != Level.SERIES:
        prefixes.append("Series")
    if parent is None or parent.level == Level.PATIENT:
        prefixes.append("Study")
    for prefix in prefixes:
        setattr(dataset, f"{prefix}Date", date)
        setattr(dataset, f"{prefix}Time", time)


def _series_items(items: list[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(data URI, item tags) of each item of a Content array, checked before anything is built."""
    checked: list[tuple[str, Mapping[str, Any]]] = []
    for item in items:
        if isinstance(item, str):
            checked.append((item, {}))
            continue
        if not isinstance(item, dict):
            raise OrthancError(ErrorCode.CREATE_DICOM_USE_DATA_URI_SCHEME)
        if "Content" not in item:
            raise OrthancError(ErrorCode.CREATE_DICOM_NO_PAYLOAD)
        content = string(item["Content"], ErrorCode.CREATE_DICOM_USE_DATA_URI_SCHEME)
        tags = json_object(
            item.get("Tags", {}), ErrorCode.BAD_REQUEST, 'The "Tags" of a series item must be a JSON object'
        )
        checked.append((content, tags))
    return checked


def _build_series(base: Dataset, items: list[Any], writer: _TagWriter, force: bool) -> list[bytes]:
    checked = _series_items(items)
    base.ImagesInAcquisition = len(checked)
    base.NumberOfTemporalPositions = 1
    files = []
    for index, (data_uri, item_tags) in enumerate(checked):
        dataset = copy.deepcopy(base)
        dataset.SOPInstanceUID = generate_uid()
        writer.apply(dataset, item_tags, force=force)
        for keyword in ("InstanceNumber", "ImageIndex"):
            if keyword not in dataset:
                setattr(dataset, keyword, index + 1)
        embed_content(dataset, data_uri)
        files.append(to_part10(dataset))
    return files


def _build_legacy(request: CreateRequest) -> Creation:
    """The deprecated flat body: tags only, PixelData as a data URI, nothing generated but IDs."""
    tags = dict(request.tags)
    character_set = tags.get("SpecificCharacterSet")
    if character_set is not None and not _known_character_set(character_set):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown specific character set: {character_set}")
    pixel_key = next((key for key in tags if int(parse_tag(key)) == PIXEL_DATA), None)
    content = tags.pop(pixel_key) if pixel_key is not None else None
    dataset = _new_dataset(character_set)
    _TagWriter(request.private_creator, interpret_binary=True).apply(dataset, tags)
    if content is not None:
        embed_content(dataset, content)
    return Creation([to_part10(dataset)], series=False)


def build(request: CreateRequest, parent: Parent | None, now: datetime, default_character_set: str) -> Creation:
    """Every file of the request, or the first error in its input."""
    if request.legacy:
        return _build_legacy(request)
    dataset = _new_dataset(_character_set(request, parent, default_character_set))
    if parent is not None:
        _inherit(dataset, parent)
    _set_dates(dataset, parent, now)
    writer = _TagWriter(request.private_creator, request.interpret_binary)
    tags = {key: value for key, value in request.tags.items() if key != "SpecificCharacterSet"}
    writer.apply(dataset, tags, force=request.force)
    if isinstance(request.content, list) and request.content:
        return Creation(_build_series(dataset, request.content, writer, request.force), series=True)
    if isinstance(request.content, str):
        embed_content(dataset, request.content)
    return Creation([to_part10(dataset)], series=False)
