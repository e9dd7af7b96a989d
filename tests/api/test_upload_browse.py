"""Uploading instances over REST and browsing them like an Orthanc client."""

from __future__ import annotations

import gzip
import io
import zipfile

import httpx

from tests.support.datasets import make_dicom

# Identifiers computed by real Orthanc 1.10.1 for DummyCT.dcm (SHA-1 of the DICOM identifiers).
DUMMY_CT = {
    "PatientID": "ozp00SjY2xG",
    "StudyInstanceUID": "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390",
    "SeriesInstanceUID": "1.2.840.113619.2.176.2025.1499492.7391.1171285944.394",
    "SOPInstanceUID": "1.2.840.113619.2.176.2025.1499492.7040.1171286242.109",
}
DUMMY_CT_IDS = {
    "ParentPatient": "6816cb19-844d5aee-85245eba-28e841e6-2414fae2",
    "ParentStudy": "b9c08539-26f93bde-c81ab0d7-bffaf2cb-a4d0bdd0",
    "ParentSeries": "f2635388-f01d497a-15f7c06b-ad7dba06-c4c599fe",
    "ID": "66a662ce-7430e543-bad44d47-0dc5a943-ec7a538d",
}


def dummy_ct_like() -> bytes:
    return make_dicom(
        patient_id=DUMMY_CT["PatientID"],
        study_uid=DUMMY_CT["StudyInstanceUID"],
        series_uid=DUMMY_CT["SeriesInstanceUID"],
        sop_uid=DUMMY_CT["SOPInstanceUID"],
    )


async def test_identifiers_match_real_orthanc(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/instances", content=dummy_ct_like())).json()
    assert answer["Status"] == "Success"
    for key, value in DUMMY_CT_IDS.items():
        assert answer[key] == value
    assert answer["Path"] == f"/instances/{DUMMY_CT_IDS['ID']}"


async def test_upload_twice_is_already_stored(http: httpx.AsyncClient) -> None:
    data = make_dicom()
    assert (await http.post("/instances", content=data)).json()["Status"] == "Success"
    assert (await http.post("/instances", content=data)).json()["Status"] == "AlreadyStored"
    assert len((await http.get("/instances")).json()) == 1


async def test_hierarchy_and_main_tags(http: httpx.AsyncClient) -> None:
    study_uid = "1.2.3.4"
    first = (await http.post("/instances", content=make_dicom(study_uid=study_uid, series_uid="1.2.3.4.5"))).json()
    await http.post("/instances", content=make_dicom(study_uid=study_uid, series_uid="1.2.3.4.5", instance_number=2))
    patient = (await http.get(f"/patients/{first['ParentPatient']}")).json()
    assert patient["Type"] == "Patient"
    assert patient["MainDicomTags"] == {"PatientID": "PAT1", "PatientName": "DOE^JOHN"}
    assert patient["Studies"] == [first["ParentStudy"]]
    study = (await http.get(f"/studies/{first['ParentStudy']}")).json()
    assert study["PatientMainDicomTags"]["PatientID"] == "PAT1"
    assert study["MainDicomTags"]["StudyInstanceUID"] == study_uid
    assert study["ParentPatient"] == first["ParentPatient"]
    series = (await http.get(f"/series/{first['ParentSeries']}")).json()
    assert len(series["Instances"]) == 2
    assert series["Status"] == "Unknown"
    assert series["ExpectedNumberOfInstances"] is None
    instance = (await http.get(f"/instances/{first['ID']}")).json()
    assert instance["IndexInSeries"] == 1
    assert instance["ParentSeries"] == first["ParentSeries"]
    children = (await http.get(f"/studies/{first['ParentStudy']}/instances")).json()
    assert {c["ID"] for c in children} == set(series["Instances"])
    parent = (await http.get(f"/instances/{first['ID']}/patient")).json()
    assert parent["ID"] == first["ParentPatient"]


async def test_list_paging_and_expand(http: httpx.AsyncClient) -> None:
    ids = [
        (await http.post("/instances", content=make_dicom(patient_id=f"P{i}"))).json()["ParentPatient"]
        for i in range(5)
    ]
    assert (await http.get("/patients")).json() == ids
    assert (await http.get("/patients", params={"since": 1, "limit": 2})).json() == ids[1:3]
    expanded = (await http.get("/patients", params={"expand": ""})).json()
    assert [p["ID"] for p in expanded] == ids
    missing = await http.get("/patients", params={"since": 1})
    assert missing.status_code == 400
    assert missing.json()["Details"] == 'Missing "limit" argument for GET request against: /patients/'


async def test_file_round_trip_and_tags(http: httpx.AsyncClient) -> None:
    data = make_dicom(patient_name="ROUND^TRIP")
    instance = (await http.post("/instances", content=data)).json()["ID"]
    answer = await http.get(f"/instances/{instance}/file")
    assert answer.content == data
    assert answer.headers["content-type"] == "application/dicom"
    tags = (await http.get(f"/instances/{instance}/tags")).json()
    assert tags["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "ROUND^TRIP"}
    simplified = (await http.get(f"/instances/{instance}/simplified-tags")).json()
    assert simplified["PatientName"] == "ROUND^TRIP"
    short = (await http.get(f"/instances/{instance}/tags", params={"short": ""})).json()
    assert short["0010,0010"] == "ROUND^TRIP"
    content = (await http.get(f"/instances/{instance}/content")).json()
    assert "0010-0010" in content
    raw = await http.get(f"/instances/{instance}/content/0010-0010")
    assert raw.content.rstrip(b" ") == b"ROUND^TRIP"


async def test_gzip_and_zip_uploads(http: httpx.AsyncClient) -> None:
    single = make_dicom(patient_id="GZ")
    answer = await http.post("/instances", content=gzip.compress(single), headers={"Content-Encoding": "gzip"})
    assert answer.json()["Status"] == "Success"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.dcm", make_dicom(patient_id="Z1"))
        archive.writestr("notdicom.txt", b"hello")
        archive.writestr("b.dcm", make_dicom(patient_id="Z2"))
    answers = (await http.post("/instances", content=buffer.getvalue())).json()
    assert [a["Status"] for a in answers] == ["Success", "Success"]


async def test_multipart_upload(http: httpx.AsyncClient) -> None:
    answer = await http.post("/instances", files={"files[]": ("x.dcm", make_dicom(patient_id="MP"))})
    assert answer.json()["Status"] == "Success"


async def test_delete_cleans_parents(http: httpx.AsyncClient) -> None:
    a = (await http.post("/instances", content=make_dicom(study_uid="9.9", series_uid="9.9.1"))).json()
    b = (await http.post("/instances", content=make_dicom(study_uid="9.9", series_uid="9.9.2"))).json()
    answer = (await http.delete(f"/instances/{a['ID']}")).json()
    assert answer["RemainingAncestor"] == {
        "ID": b["ParentStudy"],
        "Path": f"/studies/{b['ParentStudy']}",
        "Type": "Study",
    }
    assert (await http.get(f"/series/{a['ParentSeries']}")).status_code == 404
    answer = (await http.delete(f"/patients/{b['ParentPatient']}")).json()
    assert answer["RemainingAncestor"] is None
    stats = (await http.get("/statistics")).json()
    assert stats["CountInstances"] == 0 and stats["TotalDiskSize"] == "0"
    assert (await http.delete(f"/patients/{b['ParentPatient']}")).status_code == 404


async def test_changes_log(http: httpx.AsyncClient) -> None:
    await http.post("/instances", content=make_dicom())
    changes = (await http.get("/changes")).json()
    kinds = [c["ChangeType"] for c in changes["Changes"]]
    assert kinds == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
    assert changes["Done"] is True and changes["Last"] == 4
    page = (await http.get("/changes", params={"since": 1, "limit": 2})).json()
    assert [c["Seq"] for c in page["Changes"]] == [2, 3] and page["Done"] is False
    last = (await http.get("/changes", params={"last": ""})).json()
    assert last["Last"] == 4 and len(last["Changes"]) == 1


async def test_statistics(http: httpx.AsyncClient) -> None:
    data = make_dicom()
    await http.post("/instances", content=data)
    stats = (await http.get("/statistics")).json()
    assert stats["CountPatients"] == 1 and stats["CountInstances"] == 1
    assert stats["TotalDiskSize"] == str(len(data))


async def test_system(http: httpx.AsyncClient) -> None:
    system = (await http.get("/system")).json()
    assert system["Version"] == "1.10.1"
    assert system["ApiVersion"] == 16
    assert system["DicomAet"] == "ORTHANC"
    assert system["Product"]["Name"]
