"""node.dicom.tag_paths: `Seq[i].Seq[*].Tag` as request bodies name elements inside sequences."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from node.dicom.tag_paths import TagPath, parse_path
from node.errors import ErrorCode, OrthancError

REFERENCED_IMAGE_SEQUENCE = 0x00081140
REFERENCED_SOP_INSTANCE_UID = 0x00081155
PATIENT_NAME = 0x00100010
CONTENT_SEQUENCE = 0x0040A730


def item(uid: str, nested: list[Dataset] | None = None) -> Dataset:
    ds = Dataset()
    ds.ReferencedSOPInstanceUID = uid
    if nested is not None:
        ds.ContentSequence = nested
    return ds


def dataset() -> Dataset:
    """Two referenced images, the second with two content items of its own."""
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.ReferencedImageSequence = [item("1.1"), item("1.2", [item("2.1"), item("2.2")])]
    return ds


def uids(path: TagPath, ds: Dataset) -> list[str]:
    return [str(found.ReferencedSOPInstanceUID) for found in path.items(ds)]


def test_a_tag_alone_is_top_level_by_name_or_number() -> None:
    for text in ("PatientName", "0010,0010", "00100010"):
        path = parse_path(text)
        assert (path.tag, path.parents, path.top_level, path.text) == (PATIENT_NAME, (), True, text)
        assert list(path.items(dataset())) == [dataset()]  # the dataset itself holds the tag


def test_parents_with_an_index_or_every_item() -> None:
    path = parse_path("ReferencedImageSequence[1].ContentSequence[*].ReferencedSOPInstanceUID")
    assert path.tag == REFERENCED_SOP_INSTANCE_UID and not path.top_level
    assert path.parents == ((REFERENCED_IMAGE_SEQUENCE, 1), (CONTENT_SEQUENCE, None))
    assert uids(path, dataset()) == ["2.1", "2.2"]
    assert uids(parse_path("0008,1140[*].ReferencedSOPInstanceUID"), dataset()) == ["1.1", "1.2"]
    assert uids(parse_path("ReferencedImageSequence[0].ReferencedSOPInstanceUID"), dataset()) == ["1.1"]


@pytest.mark.parametrize(
    "text",
    [
        "ReferencedImageSequence[5].ReferencedSOPInstanceUID",  # no such item
        "ReferencedImageSequence[0].ContentSequence[*].ReferencedSOPInstanceUID",  # no such sequence there
        "PatientName[0].ReferencedSOPInstanceUID",  # not a sequence
        "OtherPatientIDsSequence[*].PatientID",  # absent
    ],
)
def test_missing_steps_lead_nowhere(text: str) -> None:
    assert list(parse_path(text).items(dataset())) == []


@pytest.mark.parametrize(
    ("text", "details"),
    [
        ("ReferencedImageSequence.ReferencedSOPInstanceUID", "Parent path doesn't contain an index"),
        ("ReferencedImageSequence[0.ReferencedSOPInstanceUID", "Parent path doesn't contain an index"),
        ("ReferencedImageSequence[x].ReferencedSOPInstanceUID", "Not a valid index in parent path: [x]"),
        ("ReferencedImageSequence[-1].ReferencedSOPInstanceUID", "Not a valid index in parent path: [-1]"),
    ],
)
def test_bad_parent_steps_are_error_3(text: str, details: str) -> None:
    with pytest.raises(OrthancError) as raised:
        parse_path(text)
    assert (raised.value.code, raised.value.details) == (ErrorCode.PARAMETER_OUT_OF_RANGE, details)


def test_an_unknown_name_is_refused() -> None:
    with pytest.raises(OrthancError) as raised:
        parse_path("ReferencedImageSequence[0].NoSuchTag")
    assert raised.value.code is ErrorCode.UNKNOWN_DICOM_TAG
