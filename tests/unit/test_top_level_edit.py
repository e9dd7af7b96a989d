"""A modification edited in place gives the very bytes of reading, editing and encoding the whole dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import ImplicitVRLittleEndian

from node.dicom.ids import Level
from node.dicom.rewrite import (
    ALWAYS_READ,
    Reassignment,
    UidMap,
    apply_plan,
    modify_file,
    reassign,
    reassign_file,
    rewrite_file,
)
from node.dicom.rewrite_plan import ModificationPlan, parse_modify_request
from node.dicom.tag_numbers import STUDY_INSTANCE_UID
from node.dicom.top_level_edit import edit_top_level
from node.errors import OrthancError
from tests.support.datasets import SHARED_TESTDATA, make_dicom, needs_testdata

# What the whole-dataset path raises: Orthanc's errors, and pydicom's for a file it cannot write
# (no SOPInstanceUID); the in-place path must raise the same.
REFUSED = (OrthancError, AttributeError)
MAX_FILE_SIZE = 4 * 1024 * 1024  # bytes: larger test files add time and no new case
MIN_FILES_IN_PLACE = 20  # of the shared test files, those in plain little endian without odd elements

REQUESTS: list[tuple[Level, dict[str, object]]] = [
    (Level.STUDY, {"Replace": {"StudyDescription": "edited in place"}}),
    (Level.SERIES, {"Replace": {"SeriesDescription": "odd", "InstitutionName": "Hospital"}, "Remove": ["StationName"]}),
    (
        Level.INSTANCE,
        {"Replace": {"ImageComments": "a\\b", "InstanceNumber": "7"}, "Keep": ["SeriesInstanceUID"], "Force": True},
    ),
    (
        Level.PATIENT,
        {"Replace": {"PatientID": "new", "PatientName": "X^Y"}, "Remove": ["PatientBirthDate"], "Force": True},
    ),
    (
        Level.STUDY,
        {"Replace": {"0019,1010": "private"}, "PrivateCreator": "Creator", "Remove": ["AccessionNumber"]},
    ),
]


def _plan(level: Level, body: dict[str, object]) -> ModificationPlan:
    return parse_modify_request(body, level=level, default_private_creator="", job=True)


def _shared_files() -> list[Path]:
    files = [p for p in sorted(SHARED_TESTDATA.rglob("*")) if p.is_file() and p.suffix not in (".md", ".json", ".txt")]
    return [p for p in files if p.stat().st_size <= MAX_FILE_SIZE]


def _both(data: bytes, plan: ModificationPlan, uids: UidMap) -> tuple[object, object]:
    """(in place, whole dataset): each a ModifiedFile, or the error it raised."""
    results: list[object] = []
    for run in (
        lambda: modify_file(data, plan, uids),
        lambda: rewrite_file(data, lambda dataset: apply_plan(dataset, plan, uids)),
    ):
        try:
            results.append(run())
        except REFUSED as error:
            results.append((type(error), str(error)))
    return results[0], results[1]


def _assert_same(data: bytes, plan: ModificationPlan, uids: UidMap) -> None:
    fast, slow = _both(data, plan, uids)
    assert fast == slow


@needs_testdata
def test_modifications_in_place_equal_the_whole_dataset_path_on_every_test_file() -> None:
    uids = UidMap()
    in_place = 0
    for path in _shared_files():
        data = path.read_bytes()
        if edit_top_level(data, ALWAYS_READ, lambda dataset: None) is None:
            continue  # left to the whole-dataset path: nothing to compare
        in_place += 1
        for level, body in REQUESTS:
            _assert_same(data, _plan(level, body), uids)
    assert in_place >= MIN_FILES_IN_PLACE


def test_implicit_and_explicit_files_are_edited_in_place_with_identical_bytes() -> None:
    uids = UidMap()
    for syntax in (None, ImplicitVRLittleEndian):
        data = make_dicom() if syntax is None else make_dicom(transfer_syntax=syntax)
        for level, body in REQUESTS:
            plan = _plan(level, body)
            _assert_same(data, plan, uids)
        assert edit_top_level(data, ALWAYS_READ, lambda dataset: None) is not None


def test_a_refused_plan_fails_the_same_way_in_place() -> None:
    plan = _plan(Level.STUDY, {"Replace": {"PatientID": "not at study level"}, "Force": True})
    fast, slow = _both(make_dicom(), plan, UidMap())
    assert isinstance(fast, tuple)
    assert fast == slow


@needs_testdata
def test_reassignments_in_place_equal_the_whole_dataset_path() -> None:
    reassignment = Reassignment(frozenset([0x00080050]), {STUDY_INSTANCE_UID: "1.2.3.4", 0x00081030: "moved"})
    uids = UidMap()
    for path in _shared_files():
        data = path.read_bytes()
        if edit_top_level(data, ALWAYS_READ, lambda dataset: None) is None:
            continue
        slow = rewrite_file(data, lambda dataset: reassign(dataset, reassignment, uids))
        assert reassign_file(data, reassignment, uids) == slow


@pytest.mark.parametrize("cut", [130, 200, -3])
def test_a_truncated_file_is_left_to_the_whole_dataset_path(cut: int) -> None:
    data = make_dicom()[:cut]
    assert edit_top_level(data, {STUDY_INSTANCE_UID}, lambda dataset: None) is None
