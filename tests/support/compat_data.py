"""The generated files the differential scenarios upload to both servers: made once, so that both
get the same bytes, with UIDs fixed here so that the Orthanc IDs of what they hold can be named."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .datasets import make_dataset, to_bytes

ROOT = "1.2.826.0.1.3680043.8.498.77"
STUDY_UID = f"{ROOT}.1"
SERIES_UIDS = (f"{ROOT}.1.1", f"{ROOT}.1.2")
OTHER_STUDY_UID = f"{ROOT}.2"
PIXELS = bytes(range(256)) * 2  # 256 16-bit pixels


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def _instance(series: int, number: int, **tags: object) -> bytes:
    ds = make_dataset(
        patient_id="COMPAT1",
        patient_name="DOE^JANE",
        study_uid=STUDY_UID,
        series_uid=SERIES_UIDS[series],
        sop_uid=f"{SERIES_UIDS[series]}.{number}",
        instance_number=number,
        modality=("CT", "MR")[series],
        pixels=PIXELS,
        PatientBirthDate="19700101",
        PatientSex="F",
        StudyDate="20240115",
        StudyTime="101500",
        StudyID="S1",
        AccessionNumber="ACC1",
        ReferringPhysicianName="WHO^DOCTOR",
        InstitutionName="Compat Hospital",
        SeriesDescription=f"series {series + 1}",
        SeriesNumber=series + 1,
        SeriesDate="20240115",
        BodyPartExamined="HEAD",
        ImagePositionPatient=[0, 0, number],
        ImageOrientationPatient=[1, 0, 0, 0, 1, 0],
        **tags,
    )
    ds.ProcedureCodeSequence = Sequence([_code("P1", "procedure")])
    referenced = Dataset()
    referenced.ReferencedSOPClassUID = ds.SOPClassUID
    referenced.ReferencedSOPInstanceUID = f"{SERIES_UIDS[series]}.{number}"
    ds.SourceImageSequence = Sequence([referenced])
    return to_bytes(ds)


# One patient, one study of two series (CT, MR) of two instances each.
STUDY = {
    "ct1": _instance(0, 1),
    "ct2": _instance(0, 2),
    "mr1": _instance(1, 1),
    "mr2": _instance(1, 2),
}
# A second study of the same patient, one instance.
OTHER_STUDY = to_bytes(
    make_dataset(
        patient_id="COMPAT1",
        patient_name="DOE^JANE",
        study_uid=OTHER_STUDY_UID,
        series_uid=f"{OTHER_STUDY_UID}.1",
        sop_uid=f"{OTHER_STUDY_UID}.1.1",
        modality="US",
        StudyDate="20230301",
        StudyDescription="Other study",
    )
)
# Another patient, with a non-ASCII name in Latin-1.
LATIN1_PATIENT = to_bytes(
    make_dataset(
        patient_id="COMPAT2",
        patient_name="MÜLLER^JÜRGEN",
        study_uid=f"{ROOT}.3",
        series_uid=f"{ROOT}.3.1",
        sop_uid=f"{ROOT}.3.1.1",
        SpecificCharacterSet="ISO_IR 100",
        StudyDate="20220202",
    )
)
