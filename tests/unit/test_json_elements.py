"""node.dicom.json_elements: data elements built from the JSON values of create-dicom, modify and split/merge."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from node.dicom.json_elements import (
    check_shape,
    dataset_encodings,
    empty_element,
    parse_data_uri,
    set_from_json,
    vr_for,
)
from node.errors import ErrorCode, OrthancError
from node.nesting import MAX_SEQUENCE_DEPTH

PATIENT_NAME = 0x00100010
ROWS = 0x00280010  # US
SLICE_THICKNESS = 0x00180050  # DS
PIXEL_DATA = 0x7FE00010  # "OB or OW"
FRAME_INCREMENT_POINTER = 0x00280009  # AT
REFERENCED_IMAGE_SEQUENCE = 0x00081140
CONTENT_SEQUENCE = 0x0040A730
PRIVATE_ELEMENT = 0x00091001  # block 0x10 of group 0009
PRIVATE_CREATOR_SLOT = 0x00090010
ASCII = ["iso8859"]


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def set_value(tag: int, value: Any, dataset: Dataset | None = None, creator: str = "") -> Dataset:
    """What the callers do: the shape is checked when the request is read, then the value set."""
    check_shape(tag, value)
    target = dataset if dataset is not None else Dataset()
    set_from_json(target, tag, value, dataset_encodings(target), creator)
    return target


def refused(tag: int, value: Any) -> OrthancError:
    with pytest.raises(OrthancError) as raised:
        set_value(tag, value)
    return raised.value


def test_encodings_follow_the_specific_character_set() -> None:
    assert dataset_encodings(Dataset()) == ["iso8859"]
    latin1 = Dataset()
    latin1.SpecificCharacterSet = "ISO_IR 100"
    assert dataset_encodings(latin1) == ["latin_1"]


def test_vr_from_the_dataset_then_the_dictionaries() -> None:
    ds = Dataset()
    ds.add(DataElement(PATIENT_NAME, "LO", "stored as LO"))
    assert vr_for(ds, PATIENT_NAME, "") == "LO"  # the element being replaced wins
    assert vr_for(Dataset(), PATIENT_NAME, "") == "PN"
    assert vr_for(Dataset(), PIXEL_DATA, "") == "OB"  # the first of several
    assert vr_for(Dataset(), PRIVATE_CREATOR_SLOT, "") == "LO"
    assert vr_for(Dataset(), PRIVATE_ELEMENT, "") == "UN"  # no creator, nothing to look up
    assert vr_for(Dataset(), 0x00990001, "") == "UN"  # odd group 0099, element unknown


def test_text_numbers_and_tags_are_converted_by_vr() -> None:
    ds = set_value(PATIENT_NAME, "DOE^JOHN")
    set_value(ROWS, "512", ds)
    set_value(SLICE_THICKNESS, "1.5\\2", ds)
    set_value(FRAME_INCREMENT_POINTER, "0018,1063", ds)
    assert ds[PATIENT_NAME].value == "DOE^JOHN"
    assert ds[ROWS].value == 512
    assert list(ds[SLICE_THICKNESS].value) == [1.5, 2.0]
    assert ds[FRAME_INCREMENT_POINTER].value == 0x00181063


def test_null_and_empty_values_are_empty_elements() -> None:
    ds = set_value(PATIENT_NAME, None)
    set_value(ROWS, "", ds)
    set_value(REFERENCED_IMAGE_SEQUENCE, None, ds)
    assert ds[PATIENT_NAME].value in ("", None)
    assert ds[ROWS].value is None
    assert ds[REFERENCED_IMAGE_SEQUENCE].VR == "SQ" and len(ds[REFERENCED_IMAGE_SEQUENCE].value) == 0


def test_data_uris_give_binary_values_and_decoded_text() -> None:
    ds = set_value(PIXEL_DATA, data_uri("application/octet-stream", b"\x00\x01\x02\x03"))
    assert ds[PIXEL_DATA].VR == "OB" and ds[PIXEL_DATA].value == b"\x00\x01\x02\x03"
    latin1 = Dataset()
    latin1.SpecificCharacterSet = "ISO_IR 100"
    set_value(PATIENT_NAME, data_uri("application/octet-stream", "Müller".encode("latin-1")), latin1)
    assert latin1[PATIENT_NAME].value == "Müller"


def test_sequences_are_built_from_lists_of_items() -> None:
    value = [{"ReferencedSOPInstanceUID": "1.2.3", "ContentSequence": [{"PatientName": "INNER"}]}, {}]
    ds = set_value(REFERENCED_IMAGE_SEQUENCE, value)
    items = ds.ReferencedImageSequence
    assert isinstance(items, Sequence) and len(items) == 2
    assert items[0].ReferencedSOPInstanceUID == "1.2.3"
    assert items[0].ContentSequence[0].PatientName == "INNER"
    assert len(items[1]) == 0


def test_a_new_private_element_gets_its_creator_once() -> None:
    ds = set_value(PRIVATE_ELEMENT, "value", creator="ACME")
    assert ds[PRIVATE_CREATOR_SLOT].value == "ACME"
    ds[PRIVATE_CREATOR_SLOT].value = "OTHER"
    set_value(0x00091002, "second", ds, creator="ACME")  # the slot is taken: left as it is
    assert ds[PRIVATE_CREATOR_SLOT].value == "OTHER"


@pytest.mark.parametrize(
    ("tag", "value", "code", "details"),
    [
        (PATIENT_NAME, ["x"], ErrorCode.BAD_PARAMETER_TYPE, "Bad Parameter type for tag 0010,0010"),
        (REFERENCED_IMAGE_SEQUENCE, {"a": 1}, ErrorCode.BAD_PARAMETER_TYPE, "Bad Parameter type for tag 0008,1140"),
        (
            REFERENCED_IMAGE_SEQUENCE,
            "text",
            ErrorCode.BAD_FILE_FORMAT,
            'While creating a DICOM instance, tag (0008,1140) has out-of-range value: "text"',
        ),
        (
            ROWS,
            "70000",
            ErrorCode.BAD_FILE_FORMAT,
            'While creating a DICOM instance, tag (0028,0010) has out-of-range value: "70000"',
        ),
        (
            ROWS,
            "abc",
            ErrorCode.BAD_FILE_FORMAT,
            'While creating a DICOM instance, tag (0028,0010) has out-of-range value: "abc"',
        ),
    ],
)
def test_values_their_vr_cannot_hold(tag: int, value: Any, code: ErrorCode, details: str) -> None:
    error = refused(tag, value)
    assert (error.code, error.details) == (code, details)


def test_check_shape_accepts_strings_null_and_items() -> None:
    check_shape(PATIENT_NAME, "x")
    check_shape(PATIENT_NAME, None)
    check_shape(CONTENT_SEQUENCE, [{"PatientName": "x", "ContentSequence": [{}]}])


@pytest.mark.parametrize("value", [3, 1.5, True, {"a": 1}, ["x"], [{"PatientName": 3}], [{"ContentSequence": [1]}]])
def test_check_shape_refuses_other_shapes_at_any_depth(value: Any) -> None:
    with pytest.raises(OrthancError) as raised:
        check_shape(CONTENT_SEQUENCE, value)
    assert raised.value.code is ErrorCode.BAD_PARAMETER_TYPE


def nested(depth: int) -> list[dict[str, Any]]:
    value: list[dict[str, Any]] = [{}]
    for _ in range(depth - 1):
        value = [{"ContentSequence": value}]
    return value


def test_check_shape_bounds_the_depth_of_sequences() -> None:
    check_shape(CONTENT_SEQUENCE, nested(MAX_SEQUENCE_DEPTH))
    with pytest.raises(OrthancError) as raised:
        check_shape(CONTENT_SEQUENCE, nested(MAX_SEQUENCE_DEPTH + 1))
    assert raised.value.code is ErrorCode.BAD_FILE_FORMAT
    assert raised.value.details == f"Sequences nested deeper than {MAX_SEQUENCE_DEPTH} levels cannot be created"


def test_parse_data_uri() -> None:
    assert parse_data_uri("data:Application/PDF;base64,JVBE\nRi0=") == ("application/pdf", b"%PDF-")
    for bad in ("data:text/plain,hello", "not a uri", "data:image/png;base64,@@@"):
        with pytest.raises(OrthancError) as raised:
            parse_data_uri(bad)
        assert raised.value.code is ErrorCode.BAD_FILE_FORMAT


def test_empty_element_keeps_tag_and_vr() -> None:
    emptied = empty_element(DataElement(PATIENT_NAME, "PN", "DOE^JOHN"))
    assert (emptied.tag, emptied.VR, emptied.is_empty) == (PATIENT_NAME, "PN", True)
    sequence = empty_element(DataElement(REFERENCED_IMAGE_SEQUENCE, "SQ", Sequence([Dataset()])))
    assert sequence.VR == "SQ" and len(sequence.value) == 0
