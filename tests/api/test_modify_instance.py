"""POST /instances/{id}/modify and /anonymize: the modified file is answered, nothing is stored."""

from __future__ import annotations

import io
import re

import httpx
import pydicom
from pydicom.dataset import Dataset

from tests.support.datasets import make_dataset
from tests.support.rest import assert_error, post, upload

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
METHOD_2021B = "Orthanc 1.10.1 - PS 3.15-2021b Table E.1-1 Basic Profile"


def rich_dataset() -> Dataset:
    """An instance with what anonymization touches: profile tags, private tags, overlays, references."""
    ds = make_dataset(patient_id="PAT-M", patient_name="DOE^JANE", StudyDate="20200101", InstitutionName="Hospital")
    ds.FrameOfReferenceUID = "1.2.3.99"
    ds.add_new(0x60003000, "OW", b"\0\1")  # overlay data
    ds.add_new(0x60000010, "US", 1)  # overlay rows: outside the removed ranges
    block = ds.private_block(0x0013, "ACME", create=True)
    block.add_new(0x10, "LO", "secret")
    reference = Dataset()
    reference.ReferencedSOPClassUID = ds.SOPClassUID
    reference.ReferencedSOPInstanceUID = ds.SOPInstanceUID  # points at the instance itself
    reference.InstitutionName = "Nested hospital"
    reference.StudyDate = "20200101"
    reference.PatientName = "NESTED"
    reference.private_block(0x0015, "ACME", create=True).add_new(0x01, "LO", "nested secret")
    ds.ReferencedImageSequence = [reference]
    return ds


def dicom(answer: httpx.Response) -> Dataset:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/dicom"
    return pydicom.dcmread(io.BytesIO(answer.content))


async def test_modify_answers_a_new_instance_without_storing_it(http: httpx.AsyncClient) -> None:
    source = make_dataset(patient_name="OLD^NAME")
    public_id = (await upload(http, source))["ID"]
    ds = dicom(await post(http, f"/instances/{public_id}/modify", {"Replace": {"PatientName": "NEW^NAME"}}))
    assert ds.PatientName == "NEW^NAME"
    assert ds.PatientID == source.PatientID
    # Instance level: only the SOPInstanceUID is regenerated.
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.SeriesInstanceUID == source.SeriesInstanceUID
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.StudyDescription == source.StudyDescription
    assert (await http.get("/instances")).json() == [public_id]


async def test_replacing_an_identifier_raises_the_level(http: httpx.AsyncClient) -> None:
    source = make_dataset()
    public_id = (await upload(http, source))["ID"]
    body = {"Replace": {"StudyInstanceUID": "1.2.3.4"}, "Force": True}
    ds = dicom(await post(http, f"/instances/{public_id}/modify", body))
    assert ds.StudyInstanceUID == "1.2.3.4"
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID  # study level: series regenerated too
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    kept = dicom(await post(http, f"/instances/{public_id}/modify", {"Keep": ["SOPInstanceUID"], "Force": True}))
    assert kept.SOPInstanceUID == source.SOPInstanceUID


async def test_identifier_tags_need_force(http: httpx.AsyncClient) -> None:
    public_id = (await upload(http, make_dataset()))["ID"]
    for name, body, verb in [
        ("PatientID", {"Replace": {"PatientID": "X"}}, "replaced"),
        ("0020,000d", {"Remove": ["0020,000d"]}, "removed"),
        ("SOPInstanceUID", {"Keep": ["SOPInstanceUID"]}, "kept"),
    ]:
        answer = assert_error(await post(http, f"/instances/{public_id}/modify", body), 400, 8)
        assert (
            answer["Details"] == f'Marking tag "{name}" as to be {verb} requires the "Force" option to be set to true'
        )
    # With Force, removing an identifier is refused when the modification runs.
    answer = assert_error(await post(http, f"/instances/{public_id}/modify", {"Remove": ["PatientID"], "Force": True}), 400, 8)
    assert "Details" not in answer


async def test_malformed_requests(http: httpx.AsyncClient) -> None:
    public_id = (await upload(http, make_dataset()))["ID"]
    path = f"/instances/{public_id}/modify"
    assert_error(await post(http, "/instances/0123/modify", {}), 404, 17)
    assert_error(await post(http, "/instances/0123/modify", "[]"), 400, 15)  # the body is checked first
    assert_error(await post(http, path, ""), 400, 15)
    assert_error(await post(http, path, {"Replace": ["PatientName"]}), 400, 8)
    assert_error(await post(http, path, {"Remove": "PatientName"}), 400, 8)
    assert_error(await post(http, path, {"Keep": [3]}), 400, 8)
    assert_error(await post(http, path, {"Replace": {"NoSuchTag": "x"}}), 500, 27)
    assert_error(await post(http, path, {"Remove": ["ReferencedImageSequence[0].NoSuchTag"]}), 500, 27)
    assert (
        assert_error(await post(http, path, {"Force": "yes"}), 400, 15)["Details"]
        == 'Member "Force" should be a Boolean value'
    )
    answer = assert_error(await post(http, path, {"PrivateCreator": 3}), 400, 15)
    assert answer["Details"] == "String value expected in field: PrivateCreator"
    answer = assert_error(await post(http, path, {"Replace": {"PatientName": 3}}), 400, 5)
    assert answer["Details"] == "Bad Parameter type for tag 0010,0010"
    answer = assert_error(await post(http, path, {"Replace": {"InstanceNumber": "abc"}}), 400, 15)
    assert "(0020,0013)" in answer["Details"]
    answer = assert_error(await post(http, path, {"Replace": {"Rows": "70000"}}), 400, 15)
    assert answer["Details"] == 'While creating a DICOM instance, tag (0028,0010) has out-of-range value: "70000"'
    answer = assert_error(await post(http, path, {"Remove": ["ReferencedImageSequence.ReferencedSOPInstanceUID"]}), 400, 3)
    assert answer["Details"] == "Parent path doesn't contain an index"
    answer = assert_error(await post(http, path, {"Remove": ["ReferencedImageSequence[x].ReferencedSOPInstanceUID"]}), 400, 3)
    assert answer["Details"] == "Not a valid index in parent path: [x]"
    answer = assert_error(await post(http, path, {"Transcode": "1.2.3"}), 400, 3)
    assert answer["Details"] == "Unknown transfer syntax: 1.2.3"
    dicom(await post(http, path, {"Transcode": "1.2.840.10008.1.2.1", "KeepSource": "ignored here"}))
    assert (await http.get("/instances")).json() == [public_id]  # data left intact


async def test_values_sequences_and_paths(http: httpx.AsyncClient) -> None:
    source = rich_dataset()
    public_id = (await upload(http, source))["ID"]
    body = {
        "Replace": {
            "PatientName": None,
            "ImageType": "ORIGINAL\\PRIMARY",
            "Rows": "12",
            "PatientComments": "data:application/octet-stream;base64,SGVsbG8=",
            "ReferencedStudySequence": [{"ReferencedSOPClassUID": "1.2.3", "ReferencedSOPInstanceUID": "1.2.4"}],
            "ReferencedImageSequence[*].ReferencedSOPClassUID": "1.2.5",
            "0019,1001": "private value",
        },
        "Remove": ["ReferencedImageSequence[0].ReferencedSOPInstanceUID", "StudyDescription"],
        "PrivateCreator": "MY CREATOR",
    }
    ds = dicom(await post(http, f"/instances/{public_id}/modify", body))
    assert ds.PatientName == ""
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY"]
    assert ds.Rows == 12
    assert ds.PatientComments == "Hello"
    assert ds.ReferencedStudySequence[0].ReferencedSOPInstanceUID == "1.2.4"
    assert ds.ReferencedImageSequence[0].ReferencedSOPClassUID == "1.2.5"
    assert "ReferencedSOPInstanceUID" not in ds.ReferencedImageSequence[0]
    assert "StudyDescription" not in ds
    assert ds[0x00191001].value.rstrip(b"\0") == b"private value"
    assert ds[0x00190010].value == "MY CREATOR"
    assert ds[0x00131010].value == "secret"  # untouched private tags stay


async def test_remove_private_tags_spares_kept_ones(http: httpx.AsyncClient) -> None:
    public_id = (await upload(http, rich_dataset()))["ID"]
    ds = dicom(await post(http, f"/instances/{public_id}/modify", {"RemovePrivateTags": True, "Keep": ["0013,1010"]}))
    assert ds[0x00131010].value == "secret"
    assert ds[0x00130010].value == "ACME"  # the creator of a kept tag stays with it
    assert not [e for e in ds.ReferencedImageSequence[0] if e.tag.is_private]


async def test_anonymize_default_profile(http: httpx.AsyncClient) -> None:
    source = rich_dataset()
    public_id = (await upload(http, source))["ID"]
    ds = dicom(await post(http, f"/instances/{public_id}/anonymize", {}))
    assert ds.PatientName == "Anonymized1"
    assert UUID4.match(ds.PatientID)
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod == METHOD_2021B
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        assert ds[keyword].value != source[keyword].value
    assert "InstitutionName" not in ds  # remove list
    assert ds.StudyDate == ""  # clear list
    assert 0x60003000 not in ds and ds[0x60000010].value == 1  # overlay data range only
    assert not [e for e in ds if e.tag.is_private]
    # References follow their targets (the same table maps SOPInstanceUID everywhere).
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    nested = ds.ReferencedImageSequence[0]
    assert not [e for e in nested if e.tag.is_private]
    # The profile's remove and clear lists apply inside sequences too; PatientName only at the top.
    assert "InstitutionName" not in nested and nested.StudyDate == "" and nested.PatientName == "NESTED"
    again = dicom(await post(http, f"/instances/{public_id}/anonymize", {}))
    assert again.PatientName == "Anonymized2"  # one number per request
    assert again.PatientID != ds.PatientID
    assert (await http.get("/instances")).json() == [public_id]


async def test_anonymize_customized(http: httpx.AsyncClient) -> None:
    source = rich_dataset()
    public_id = (await upload(http, source))["ID"]
    path = f"/instances/{public_id}/anonymize"
    ds = dicom(await post(http, path, {"Replace": {"PatientName": "Hello"}}))
    assert ds.PatientName == "Hello"
    assert "DeidentificationMethod" not in ds  # a customized request does not claim the profile
    assert ds.PatientIdentityRemoved == "YES"
    ds = dicom(await post(http, path, {"Keep": ["StudyInstanceUID", "InstitutionName"], "Force": True}))
    assert ds.StudyInstanceUID == source.StudyInstanceUID
    assert ds.InstitutionName == "Hospital"
    assert ds.PatientName == "Anonymized1"  # the counter was not used by the first request
    ds = dicom(await post(http, path, {"KeepPrivateTags": True}))
    assert ds[0x00131010].value == "secret"
    assert "DeidentificationMethod" not in ds
    ds = dicom(await post(http, path, {"DicomVersion": "2008"}))
    assert ds.DeidentificationMethod == "Orthanc 1.10.1 - PS 3.15-2008 Table E.1-1"
    assert ds.StudyDate == "20200101"  # 2008 has no clear list
    ds = dicom(await post(http, path, {"DicomVersion": "2017c"}))
    assert ds.DeidentificationMethod == "Orthanc 1.10.1 - PS 3.15-2017c Table E.1-1 Basic Profile"
    answer = assert_error(await post(http, path, {"DicomVersion": "2099"}), 400, 3)
    assert answer["Details"] == "Unknown specific version of the DICOM standard: 2099"
    answer = assert_error(await post(http, path, {"Keep": ["PatientID"], "Force": True}), 400, 8)
    assert answer["Details"] == "When modifying a patient, her PatientID is required to be modified"
