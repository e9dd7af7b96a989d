"""The values the study and series records of a DICOMDIR take from their instance, as Orthanc
1.10.1 writes them (checked against it): StudyID and SeriesNumber only where the instance has a
value; a study date or time from the first of its fallbacks the instance holds, even empty, and
the time of writing where it holds none."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime

import httpx
import pydicom
from pydicom.dataset import Dataset

from tests.support.datasets import make_dataset
from tests.support.rest import upload

WRITTEN_TIME = re.compile(r"^\d{6}\.000000$")  # to the second, with an empty fraction


async def _records(http: httpx.AsyncClient, dataset: Dataset) -> dict[str, Dataset]:
    """The records of the DICOMDIR of one instance's patient, by type."""
    patient = (await upload(http, dataset))["ParentPatient"]
    answer = await http.get(f"/patients/{patient}/media")
    assert answer.status_code == 200
    dicomdir = zipfile.ZipFile(io.BytesIO(answer.content)).read("DICOMDIR")
    records = pydicom.dcmread(io.BytesIO(dicomdir)).DirectoryRecordSequence
    return {record.DirectoryRecordType: record for record in records}


async def test_study_id_and_series_number_only_with_a_value(http: httpx.AsyncClient) -> None:
    bare = await _records(http, make_dataset(patient_id="BARE"))
    assert "StudyID" not in bare["STUDY"] and "SeriesNumber" not in bare["SERIES"]
    empty = await _records(http, make_dataset(patient_id="EMPTY", StudyID="", SeriesNumber=None))
    assert "StudyID" not in empty["STUDY"] and "SeriesNumber" not in empty["SERIES"]
    given = await _records(http, make_dataset(patient_id="GIVEN", StudyID="S7", SeriesNumber=3))
    assert given["STUDY"].StudyID == "S7" and given["SERIES"].SeriesNumber == 3
    assert bare["STUDY"].StudyDescription == "Test study" and bare["SERIES"].Modality == "CT"


async def test_a_study_without_date_or_time_is_dated_when_written(http: httpx.AsyncClient) -> None:
    before = datetime.now(UTC).strftime("%Y%m%d")
    study = (await _records(http, make_dataset(patient_id="UNDATED")))["STUDY"]
    after = datetime.now(UTC).strftime("%Y%m%d")
    assert study.StudyDate in (before, after)
    assert WRITTEN_TIME.match(study.StudyTime), study.StudyTime


async def test_the_first_fallback_present_is_copied_even_empty(http: httpx.AsyncClient) -> None:
    empty_first = make_dataset(patient_id="F1", StudyDate="", SeriesDate="20200101", StudyTime="", SeriesTime="1010")
    study = (await _records(http, empty_first))["STUDY"]
    assert (study.StudyDate, study.StudyTime) == ("", "")
    later = make_dataset(patient_id="F2", SeriesDate="", AcquisitionDate="20200202", AcquisitionTime="111111")
    study = (await _records(http, later))["STUDY"]
    assert (study.StudyDate, study.StudyTime) == ("", "111111")
    content = make_dataset(patient_id="F3", ContentDate="20200303", ContentTime="121212")
    study = (await _records(http, content))["STUDY"]
    assert (study.StudyDate, study.StudyTime) == ("20200303", "121212")
