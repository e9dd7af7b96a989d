"""Anonymization inside sequences, as Orthanc 1.10.1 does it (checked with the same files).

Inside sequence items the Basic Profile removes what it removes at the top level, its
ranges (curves, overlay comments) included; a sequence that the profile empties at the
top level is removed there; a PatientID is replaced (by a value of its own). A study,
series or SOP instance UID that the request replaces is replaced by that value where a
sequence names it as such (any other UID tag names an instance), or (a study) where an RT
structure set names its study.

Deliberate deviation: Orthanc gives a UID a new value per level it is read at, so a
ReferencedSOPInstanceUID that holds a study's UID gets another value than the study;
one map for all levels gives both the same value here (references stay coherent).
"""

from __future__ import annotations

import io
import json

import httpx
import pydicom
import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from tests.support.datasets import make_dataset
from tests.support.rest import upload

STUDY, SERIES, SOP = "1.2.840.99.1", "1.2.840.99.2", "1.2.840.99.3"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def nested_item() -> Dataset:
    item = Dataset()
    item.InstitutionName = "HOSPITAL"  # removed by the profile
    item.StudyDate = "20200101"  # emptied by the profile
    item.PatientID = "NESTEDPID"
    item.StudyInstanceUID = STUDY
    item.SeriesInstanceUID = SERIES
    item.ReferencedSOPInstanceUID = SOP
    item.add(DataElement(0x50000010, "US", 3))  # curve data: a removed range
    item.add(DataElement(0x60004000, "LT", "overlay comment"))  # a removed range
    inner = Dataset()
    inner.CodeValue = "C"
    item.ContentSequence = [inner]  # emptied at the top level: removed here
    return item


async def anonymized(http: httpx.AsyncClient, body: dict[str, object]) -> Dataset:
    dataset = make_dataset(patient_id="TOP", study_uid=STUDY, series_uid=SERIES, sop_uid=SOP)
    dataset.SourceImageSequence = [nested_item()]
    study_reference = Dataset()
    study_reference.ReferencedSOPInstanceUID = STUDY  # how an RT structure set names its study
    frame_of_reference = Dataset()
    frame_of_reference.RTReferencedStudySequence = [study_reference]
    dataset.ReferencedFrameOfReferenceSequence = [frame_of_reference]
    instance = (await upload(http, dataset))["ID"]
    answer = await http.post(f"/instances/{instance}/anonymize", content=json.dumps(body))
    assert answer.status_code == 200, answer.text
    return pydicom.dcmread(io.BytesIO(answer.content))


async def test_profile_applies_inside_sequences(http: httpx.AsyncClient) -> None:
    result = await anonymized(http, {})
    item = result.SourceImageSequence[0]
    for absent in (0x00080080, 0x50000010, 0x60004000, 0x0040A730):
        assert absent not in item, hex(absent)
    assert item.StudyDate == ""
    assert item.PatientID not in ("NESTEDPID", "")
    assert item.StudyInstanceUID == result.StudyInstanceUID != STUDY
    assert item.SeriesInstanceUID == result.SeriesInstanceUID != SERIES
    assert item.ReferencedSOPInstanceUID == result.SOPInstanceUID != SOP


async def test_replaced_uids_are_replaced_where_sequences_name_them(http: httpx.AsyncClient) -> None:
    body = {"Replace": {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.4"}, "Force": True}
    result = await anonymized(http, body)
    item = result.SourceImageSequence[0]
    assert (item.StudyInstanceUID, item.SeriesInstanceUID) == ("1.2.3", "1.2.4")
    rt_study = result.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    assert rt_study.ReferencedSOPInstanceUID == "1.2.3"
    item = (await anonymized(http, {"Replace": {"SOPInstanceUID": "1.2.5"}, "Force": True})).SourceImageSequence[0]
    assert item.ReferencedSOPInstanceUID == "1.2.5"


async def test_a_replaced_patient_id_leaves_nested_ones_alone(http: httpx.AsyncClient) -> None:
    result = await anonymized(http, {"Replace": {"PatientID": "NEW"}, "Force": True})
    assert (result.PatientID, result.SourceImageSequence[0].PatientID) == ("NEW", "NESTEDPID")
