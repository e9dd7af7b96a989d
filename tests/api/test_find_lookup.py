"""POST /tools/find and /tools/lookup against a small local archive (behaviour checked on Orthanc 1.10.1)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.datasets import make_dicom
from tests.support.rest import assert_error

# Three patients, one study each; KNEE has two instances.
STUDIES: dict[str, dict[str, Any]] = {
    "KNEE": dict(
        patient_id="887", patient_name="KNEE", StudyDate="20080819", StudyTime="083722.000000",
        StudyDescription="IRM DU GENOU", AccessionNumber="A10003245599", modality="MR",
        SliceThickness="3", ImageType=["ORIGINAL", "PRIMARY", "M_SE"], DerivationDescription="xray",
    ),
    "KNIX": dict(
        patient_id="ozp00SjY2xG", patient_name="KNIX", StudyDate="20070101", StudyTime="120000.000000",
        StudyDescription="Knee (R)", modality="MR", SliceThickness="4", ImageType=["ORIGINAL", "PRIMARY", "OTHER"],
        DerivationDescription="x" * 300,
    ),
    "OLE": dict(
        patient_id="P3", patient_name="Ölé^Ünicode", StudyDate="20200101", StudyTime="120000",
        StudyDescription="CT chest", modality="CT", SliceThickness="1", SpecificCharacterSet="ISO_IR 192",
    ),
}  # fmt: skip


@pytest.fixture
async def archive(http: httpx.AsyncClient) -> dict[str, dict[str, str]]:
    """Name -> the upload answer of its (first) instance; KNEE's second instance under "KNEE2"."""
    stored = {}
    for name, tags in STUDIES.items():
        stored[name] = (await http.post("/instances", content=make_dicom(**tags))).json()
    knee = stored["KNEE"]
    study_uid = (await http.get(f"/studies/{knee['ParentStudy']}")).json()["MainDicomTags"]["StudyInstanceUID"]
    series_uid = (await http.get(f"/series/{knee['ParentSeries']}")).json()["MainDicomTags"]["SeriesInstanceUID"]
    second = make_dicom(**STUDIES["KNEE"], study_uid=study_uid, series_uid=series_uid, instance_number=2)
    stored["KNEE2"] = (await http.post("/instances", content=second)).json()
    return stored


async def _find(http: httpx.AsyncClient, level: str, query: dict[str, str], **extra: Any) -> list[Any]:
    answer = await http.post("/tools/find", json={"Level": level, "Query": query, **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _names(ids: list[str], archive: dict[str, dict[str, str]], key: str = "ParentStudy") -> set[str]:
    by_id = {answer[key]: name for name, answer in archive.items() if name != "KNEE2"}
    return {by_id[i] for i in ids}


async def test_wildcards_and_case(http: httpx.AsyncClient, archive) -> None:
    assert _names(await _find(http, "Study", {"PatientName": "kn*"}), archive) == {"KNEE", "KNIX"}
    assert await _find(http, "Study", {"PatientName": "kn*"}, CaseSensitive=True) == []
    assert _names(await _find(http, "Study", {"PatientName": "KN?E"}), archive) == {"KNEE"}
    assert _names(await _find(http, "Study", {"PatientName": "*NEE"}), archive) == {"KNEE"}
    assert _names(await _find(http, "Study", {"StudyDescription": "knee (r)"}), archive) == {"KNIX"}
    # Accents are dropped when the search is case-insensitive.
    assert _names(await _find(http, "Study", {"PatientName": "olé^u*"}), archive) == {"OLE"}
    assert _names(await _find(http, "Study", {"PatientName": "Öl*"}, CaseSensitive=True), archive) == {"OLE"}
    assert await _find(http, "Study", {"PatientName": "ol*"}, CaseSensitive=True) == []


async def test_value_lists(http: httpx.AsyncClient, archive) -> None:
    assert _names(await _find(http, "Study", {"PatientName": "KNEE\\KNIX"}), archive) == {"KNEE", "KNIX"}
    assert _names(await _find(http, "Study", {"StudyDate": "20070101\\20200101"}), archive) == {"KNIX", "OLE"}


async def test_date_and_time_ranges(http: httpx.AsyncClient, archive) -> None:
    assert _names(await _find(http, "Study", {"StudyDate": "20070101-20080819"}), archive) == {"KNEE", "KNIX"}
    assert _names(await _find(http, "Study", {"StudyDate": "-20071231"}), archive) == {"KNIX"}
    assert _names(await _find(http, "Study", {"StudyDate": "20080101-"}), archive) == {"KNEE", "OLE"}
    assert len(await _find(http, "Study", {"StudyDate": "-"})) == 3
    # Bounds compare as strings, as in Orthanc: 120000.000000 sorts after 120000.
    assert _names(await _find(http, "Study", {"StudyTime": "-120000"}), archive) == {"KNEE", "OLE"}
    # Ranges only exist for DA, DT and TM: elsewhere the dash is literal.
    assert await _find(http, "Instance", {"SliceThickness": "3-5"}) == []


async def test_wildcards_refused_on_other_vrs(http: httpx.AsyncClient, archive) -> None:
    for tag, value, hex_tag in (("StudyDate", "2008*", "0008,0020"), ("StudyInstanceUID", "1.2.*", "0020,000d")):
        answer = await http.post("/tools/find", json={"Level": "Study", "Query": {tag: value}})
        body = assert_error(answer, 400, 3)
        assert body["Details"] == f"Wildcards are not allowed on tag {hex_tag}"


async def test_tags_of_other_levels(http: httpx.AsyncClient, archive) -> None:
    # Patient tags work at study level; a series tag at study level matches nothing (Orthanc 1.10.1).
    assert _names(await _find(http, "Study", {"PatientID": "88*"}), archive) == {"KNEE"}
    assert await _find(http, "Study", {"Modality": "MR"}) == []
    series = await _find(http, "Series", {"Modality": "mr"})
    assert _names(series, archive, "ParentSeries") == {"KNEE", "KNIX"}
    patients = await _find(http, "Patient", {"PatientName": "*"})
    assert len(patients) == 3


async def test_tags_read_from_files(http: httpx.AsyncClient, archive) -> None:
    assert _names(await _find(http, "Study", {"SliceThickness": "4"}), archive) == {"KNIX"}
    instances = await _find(http, "Instance", {"SliceThickness": "3"})
    assert set(instances) == {archive["KNEE"]["ID"], archive["KNEE2"]["ID"]}
    originals = await _find(http, "Instance", {"ImageType": "ORIGINAL*"})
    assert len(originals) == 3
    # A backslash makes a list of values: no single value equals "original".
    assert await _find(http, "Instance", {"ImageType": "original\\primary\\other"}) == []
    # Values over 256 bytes are "TooLong" in Orthanc's view of a file: they match nothing.
    comments = await _find(http, "Instance", {"DerivationDescription": "x*"})
    assert set(comments) == {archive["KNEE"]["ID"], archive["KNEE2"]["ID"]}
    both = await _find(http, "Instance", {"ImageType": "*OTHER", "InstanceNumber": "1"})
    assert both == [archive["KNIX"]["ID"]]


async def test_absent_and_empty_values(http: httpx.AsyncClient, archive) -> None:
    assert _names(await _find(http, "Study", {"AccessionNumber": "*"}), archive) == {"KNEE"}
    assert len(await _find(http, "Study", {"AccessionNumber": ""})) == 3
    assert len(await _find(http, "Study", {"NoSuchTagName": ""})) == 3  # an empty value is not even parsed
    assert len(await _find(http, "Study", {})) == 3
    # Without Query at all, Orthanc 1.10.1 refuses the request.
    no_query = assert_error(await http.post("/tools/find", json={"Level": "Study"}), 400, 8)
    assert no_query["Details"] == 'Field "Query" is missing, or should be a JSON object'


async def test_expand_and_tag_formats(http: httpx.AsyncClient, archive) -> None:
    [patient] = await _find(http, "Patient", {"PatientID": "887"}, Expand=True)
    assert patient["ID"] == archive["KNEE"]["ParentPatient"] and patient["Type"] == "Patient"
    assert patient["MainDicomTags"]["PatientName"] == "KNEE"
    [short] = await _find(http, "Patient", {"PatientID": "887"}, Expand=True, Short=True)
    assert short["MainDicomTags"]["0010,0010"] == "KNEE"
    [both] = await _find(http, "Patient", {"PatientID": "887"}, Expand=True, Short=True, Simplify=True)
    assert both["MainDicomTags"]["PatientName"] == "KNEE"
    [full] = await _find(http, "Patient", {"PatientID": "887"}, Expand=True, Full=True)
    assert full["MainDicomTags"]["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "KNEE"}
    assert await _find(http, "Patient", {"PatientID": "887"}, Short=True) == [archive["KNEE"]["ParentPatient"]]


async def test_since_and_limit(http: httpx.AsyncClient, archive) -> None:
    everything = await _find(http, "Study", {})
    assert everything == (await http.get("/studies")).json()  # creation order
    assert await _find(http, "Study", {}, Limit=2) == everything[:2]
    assert await _find(http, "Study", {}, Since=1, Limit=1) == everything[1:2]
    assert await _find(http, "Study", {}, Since=2) == everything[2:]
    assert await _find(http, "Study", {}, Since=5) == []
    instances = await _find(http, "Instance", {"SliceThickness": "3"}, Limit=1)
    assert instances == [archive["KNEE"]["ID"]]


async def test_level_names(http: httpx.AsyncClient, archive) -> None:
    assert len(await _find(http, "studies", {})) == 3
    assert len(await _find(http, "IMAGE", {})) == 4
    assert len(await _find(http, "instance", {})) == 4
    assert_error(await http.post("/tools/find", json={"Level": "bad", "Query": {}}), 400, 3)


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        (b"not json", 400, 8, "The body must contain a JSON object"),
        (b"[]", 400, 8, "The body must contain a JSON object"),
        (b"{}", 400, 8, 'Field "Level" is missing, or should be a string'),
        (b'{"Level": 1}', 400, 8, 'Field "Level" is missing, or should be a string'),
        (b'{"Level": "Study", "Query": []}', 400, 8, 'Field "Query" is missing, or should be a JSON object'),
        (b'{"Level": "Study", "Query": {}, "CaseSensitive": 1}', 400, 8, 'Field "CaseSensitive" should be a Boolean'),
        (b'{"Level": "Study", "Query": {}, "Limit": "1"}', 400, 8, 'Field "Limit" should be an integer'),
        (b'{"Level": "Study", "Query": {}, "Limit": 1.5}', 400, 8, 'Field "Limit" should be an integer'),
        (b'{"Level": "Study", "Query": {}, "Limit": -1}', 400, 3, 'Field "Limit" should be a positive integer'),
        (b'{"Level": "Study", "Query": {}, "Since": true}', 400, 8, 'Field "Since" should be an integer'),
        (b'{"Level": "Study", "Query": {}, "Since": -2}', 400, 3, 'Field "Since" should be a positive integer'),
        (b'{"Level": "Study", "Query": {}, "Expand": "true"}', 400, 15, "Boolean value expected in field: Expand"),
        (b'{"Level": "Study", "Query": {}, "Short": "x"}', 400, 15, "Boolean value expected in field: Short"),
        (b'{"Level": "Study", "Query": {"PatientName": 1}}', 400, 8, 'Tag "PatientName" should be associated with a string'),
        (b'{"Level": "Study", "Query": {"NoSuchTag": "x"}}', 500, 27, None),
    ],
)  # fmt: skip
async def test_find_validation(
    http: httpx.AsyncClient, body: bytes, status: int, code: int, details: str | None
) -> None:
    answer = assert_error(await http.post("/tools/find", content=body), status, code)
    if details is not None:
        assert answer["Details"] == details


async def test_lookup(http: httpx.AsyncClient, archive) -> None:
    knix = archive["KNIX"]
    patient = (await http.post("/tools/lookup", content=b" OZP00sjy2xg ")).json()
    # Only the patient: the copy of PatientID kept at study level does not count.
    assert patient == [{"ID": knix["ParentPatient"], "Path": f"/patients/{knix['ParentPatient']}", "Type": "Patient"}]
    study = await http.get(f"/studies/{knix['ParentStudy']}")
    study_uid = study.json()["MainDicomTags"]["StudyInstanceUID"]
    assert (await http.post("/tools/lookup", content=study_uid.encode())).json() == [
        {"ID": knix["ParentStudy"], "Path": f"/studies/{knix['ParentStudy']}", "Type": "Study"}
    ]
    sop_uid = (await http.get(f"/instances/{knix['ID']}")).json()["MainDicomTags"]["SOPInstanceUID"]
    [instance] = (await http.post("/tools/lookup", content=sop_uid.encode())).json()
    assert instance["Type"] == "Instance" and instance["Path"] == f"/instances/{knix['ID']}"
    assert (await http.post("/tools/lookup", content=b"KNIX")).json() == []  # names are not looked up
    assert (await http.post("/tools/lookup", content=b"")).json() == []


async def test_find_on_empty_archive(http: httpx.AsyncClient) -> None:
    assert await _find(http, "Instance", {"SliceThickness": "3"}) == []
    assert (await http.post("/tools/lookup", content=b"anything")).json() == []
