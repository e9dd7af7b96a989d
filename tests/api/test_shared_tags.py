"""/shared-tags, /instances-tags, /module and /module-patient, read from the stored files."""

from __future__ import annotations

import httpx
import pytest

from tests.support.datasets import make_dicom
from tests.support.rest import assert_error


@pytest.fixture
async def series(http: httpx.AsyncClient) -> list[dict[str, str]]:
    """Three instances of one series: same patient, study and series tags, own numbers and UIDs."""
    common = dict(
        patient_id="SHARED", study_uid="1.2.3.100", series_uid="1.2.3.100.1", Manufacturer="ACME",
        PatientPosition="HFS", SeriesNumber="7", ReferringPhysicianName="WHO^KNOWS", PatientBirthTime="101010",
    )  # fmt: skip
    answers = []
    for n in (1, 2, 3):
        data = make_dicom(**common, instance_number=n, SliceThickness=str(n), ImageComments="x" * 300)
        answers.append((await http.post("/instances", content=data)).json())
    return answers


async def test_shared_tags(http: httpx.AsyncClient, series) -> None:
    url = f"/series/{series[0]['ParentSeries']}/shared-tags"
    short = (await http.get(url, params={"short": ""})).json()
    assert short["0010,0020"] == "SHARED" and short["0008,0070"] == "ACME" and short["0020,000e"] == "1.2.3.100.1"
    for differing in ("0020,0013", "0008,0018", "0018,0050"):
        assert differing not in short
    assert "0020,4000" not in short  # too long: not a String value
    full = (await http.get(url)).json()  # the full format is the default
    assert full["0008,0070"] == {"Name": "Manufacturer", "Type": "String", "Value": "ACME"}
    assert set(full) == set(short)
    simplified = (await http.get(url, params={"simplify": "", "short": ""})).json()
    assert simplified["Manufacturer"] == "ACME" and "InstanceNumber" not in simplified
    study = (await http.get(f"/studies/{series[0]['ParentStudy']}/shared-tags", params={"short": ""})).json()
    assert study == short


async def test_shared_tags_of_one_instance(http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom(patient_id="ALONE"))).json()
    shared = (await http.get(f"/patients/{stored['ParentPatient']}/shared-tags", params={"short": ""})).json()
    assert shared["0020,0013"] == "1" and shared["0010,0020"] == "ALONE"


async def test_instances_tags(http: httpx.AsyncClient, series) -> None:
    url = f"/studies/{series[0]['ParentStudy']}/instances-tags"
    answer = (await http.get(url, params={"short": ""})).json()
    assert set(answer) == {s["ID"] for s in series}
    assert answer[series[1]["ID"]]["0020,0013"] == "2"
    full = (await http.get(url)).json()
    assert full[series[0]["ID"]]["0020,4000"] == {"Name": "ImageComments", "Type": "TooLong", "Value": None}


async def test_modules(http: httpx.AsyncClient, series) -> None:
    first = series[0]
    patient = (await http.get(f"/patients/{first['ParentPatient']}/module", params={"short": ""})).json()
    assert patient == {"0010,0010": "DOE^JOHN", "0010,0020": "SHARED", "0010,0032": "101010"}
    study = (await http.get(f"/studies/{first['ParentStudy']}/module", params={"simplify": ""})).json()
    assert study == {
        "StudyDescription": "Test study",
        "StudyInstanceUID": "1.2.3.100",
        "ReferringPhysicianName": "WHO^KNOWS",
    }
    # The series module holds PatientPosition but not Manufacturer (not the main DICOM tags).
    module = (await http.get(f"/series/{first['ParentSeries']}/module", params={"simplify": ""})).json()
    assert module == {
        "Modality": "CT",
        "SeriesInstanceUID": "1.2.3.100.1",
        "SeriesNumber": "7",
        "PatientPosition": "HFS",
    }
    instance = (await http.get(f"/instances/{first['ID']}/module")).json()
    assert instance["0020,0013"] == {"Name": "InstanceNumber", "Type": "String", "Value": "1"}
    assert set(instance) == {"0008,0016", "0008,0018", "0020,0013"}
    module_patient = (await http.get(f"/studies/{first['ParentStudy']}/module-patient", params={"short": ""})).json()
    assert module_patient == patient


async def test_unknown_resources(http: httpx.AsyncClient, series) -> None:
    first = series[0]
    for url in ("/series/nope/shared-tags", "/studies/nope/instances-tags", "/patients/nope/module",
                "/studies/nope/module-patient", f"/studies/{first['ParentSeries']}/module",
                f"/series/{first['ID']}/shared-tags"):  # fmt: skip
        assert_error(await http.get(url), 404, 17)
    # Routes Orthanc does not have: its error 17 for an unknown URI (checked on 1.10.1).
    for url in (f"/instances/{first['ID']}/shared-tags", f"/series/{first['ParentSeries']}/module-patient"):
        assert_error(await http.get(url), 404, 17)
