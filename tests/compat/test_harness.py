"""The comparison machinery of the differential scenarios, on answers made here: what it treats
as equal, what it reports, and how deviations and unordered lists are applied."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.support.compat_data import STUDY
from tests.support.compat_views import (
    Normalizer,
    Renamer,
    answer_view,
    differences,
    pick,
    remove_path,
    sort_lists,
)

JOB_A, JOB_B = "0d4e8a9c-1f2b-4c3d-8e9f-0a1b2c3d4e5f", "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910"
ID_A, ID_B = "11111111-22222222-33333333-44444444-55555555", "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee"


def normalized(value: object, *, generated: bool = False, base: int = 0) -> object:
    return Normalizer(Renamer(generated), base).json(value)


def test_generated_identifiers_compare_by_position() -> None:
    ours = normalized({"ID": JOB_A, "Path": f"/jobs/{JOB_A}", "CreationTime": "20240101T101010.5"})
    theirs = normalized({"ID": JOB_B, "Path": f"/jobs/{JOB_B}", "CreationTime": "20250202T111111"})
    assert ours == theirs == {"CreationTime": "<any>", "ID": "<uuid#1>", "Path": "/jobs/<uuid#1>"}
    # Resource IDs and UIDs stay as they are unless the scenario generates them.
    assert normalized([ID_A, "1.2.3.4.5"]) == [ID_A, "1.2.3.4.5"]
    assert normalized([ID_A, ID_B, ID_A], generated=True) == ["<id#1>", "<id#2>", "<id#1>"]
    assert normalized("1.2.840.10008.1.2.1", generated=True) == "1.2.840.10008.1.2.1"


def test_change_numbers_count_from_the_scenario_start() -> None:
    assert normalized({"Last": 12, "Changes": [{"Seq": 11}]}, base=10) == {"Changes": [{"Seq": 1}], "Last": 2}


def test_differences_name_the_path_and_both_values() -> None:
    ours = {"a": [1, {"b": 2}], "c": 3}
    theirs = {"a": [1, {"b": 5}], "d": 4}
    assert list(differences(ours, theirs)) == [
        "/a/1/b: ours 2 / Orthanc 5",
        "/c: ours 3 / Orthanc '<missing>'",
        "/d: ours '<missing>' / Orthanc 4",
    ]
    assert not list(differences({"x": [1, 2]}, {"x": [1, 2]}))


def test_paths_take_wildcards() -> None:
    view = {"body": {"00080000": 1, "00100000": 2, "00100010": "name", "items": [{"k": 1}, {"k": 2}]}}
    assert sorted(pick(view, ["body", "????0000"])) == [1, 2]
    assert pick(view, ["body", "items", "*", "k"]) == [1, 2]
    assert remove_path(view, ["body", "????0000"])
    assert remove_path(view, ["body", "items", "1"])
    assert view == {"body": {"00100010": "name", "items": [{"k": 1}]}}
    assert not remove_path(view, ["body", "absent"])


def test_unordered_lists_sort_on_content_without_generated_identifiers() -> None:
    ours = {"body": [{"ID": ID_A, "Modality": "CT"}, {"ID": ID_B, "Modality": "MR"}]}
    theirs = {"body": [{"ID": ID_B, "Modality": "MR"}, {"ID": ID_A, "Modality": "CT"}]}
    assert ours != theirs
    for view in (ours, theirs):
        sort_lists(view, ["body"], masked=True)
    assert ours == theirs


def test_unordered_lists_sort_on_content_without_times() -> None:
    """Each server stored the two series in its own order, across a change of second."""
    ours = {
        "body": [
            {"LastUpdate": "20240101T000001", "Modality": "MR"},
            {"LastUpdate": "20240101T000002", "Modality": "CT"},
        ]
    }
    theirs = {
        "body": [
            {"LastUpdate": "20240101T000001", "Modality": "CT"},
            {"LastUpdate": "20240101T000002", "Modality": "MR"},
        ]
    }
    for view in (ours, theirs):
        sort_lists(view, ["body"], masked=True)
    assert [item["Modality"] for item in ours["body"]] == [item["Modality"] for item in theirs["body"]] == ["CT", "MR"]


def test_answers_are_viewed_by_kind() -> None:
    request = httpx.Request("GET", "http://127.0.0.1/")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("PAT/STUDY/CT1.dcm", STUDY["ct1"])
    zip_answer = httpx.Response(200, content=archive.getvalue(), request=request)
    view = answer_view(zip_answer, "zip", ())
    assert view["body"] == {
        "names": ["PAT/STUDY/CT1.dcm"],
        "entries": {"PAT/STUDY/CT1.dcm": "1.2.826.0.1.3680043.8.498.77.1.1.1"},
    }
    json_answer = httpx.Response(
        404, json={"HttpStatus": 404}, headers={"Content-Type": "application/json; charset=UTF-8"}, request=request
    )
    assert answer_view(json_answer, "bytes", ("content-type",)) == {
        "status": 404,
        "headers": {"content-type": "application/json"},
        "body": {"HttpStatus": 404},
    }
    dicom = answer_view(httpx.Response(200, content=STUDY["ct1"], request=request), "dicom", ())["body"]
    assert dicom["dataset"]["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "DOE^JANE"}]}
    assert "00020012" not in dicom["meta"]  # the writer's implementation UID is not compared
