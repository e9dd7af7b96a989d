"""/modify and /anonymize of patients, studies and series, and the bulk routes: ResourceModification jobs."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from node.context import NodeContext
from node.dicom.ids import Level
from node.dicom.rewrite_plan import parse_modify_request
from node.jobs.types.rewrite import ResourceModificationJob
from node.services.ingest import Origin
from node.services.rewrite import INLINE_LIMIT, ResourceModification, instances_of
from tests.support.datasets import SHARED_TESTDATA, random_pixels, to_bytes
from tests.support.rest import file_of, post
from tests.support.studies import upload_study

HIERARCHICAL = SHARED_TESTDATA / "HierarchicalAnonymization"


async def instances_below(http: httpx.AsyncClient, level: str, public_id: str) -> list[dict[str, Any]]:
    return (await http.get(f"/{level}/{public_id}/instances")).json()


async def test_modify_study_creates_one_coherent_study(http: httpx.AsyncClient) -> None:
    source = await upload_study(http)
    answer = await post(http, f"/studies/{source.study}/modify", {"Replace": {"StudyDescription": "CHANGED"}})
    assert answer.status_code == 200, answer.text
    content = answer.json()
    new_study = content["ID"]
    assert content == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "ID": new_study,
        "InstancesCount": 4,
        "IsAnonymization": False,
        "Path": f"/studies/{new_study}",
        "PatientID": source.patient,  # PatientID unchanged: the same patient
        "Type": "Study",
    }
    assert new_study != source.study
    study = (await http.get(f"/studies/{new_study}")).json()
    assert study["ParentPatient"] == source.patient
    assert study["ModifiedFrom"] == source.study
    assert study["MainDicomTags"]["StudyDescription"] == "CHANGED"
    assert len(study["Series"]) == 2  # one new series per original series
    new_instances = await instances_below(http, "studies", new_study)
    assert len(new_instances) == 4
    files = [await file_of(http, i["ID"]) for i in new_instances]
    assert len({f.StudyInstanceUID for f in files}) == 1
    originals = {i: await file_of(http, i) for i in source.instances}
    by_original_series: dict[str, set[str]] = {}
    for instance in new_instances:
        origin = originals[instance["ModifiedFrom"]]
        new_file = await file_of(http, instance["ID"])
        by_original_series.setdefault(origin.SeriesInstanceUID, set()).add(new_file.SeriesInstanceUID)
        assert new_file.SOPInstanceUID != origin.SOPInstanceUID
    assert all(len(new) == 1 for new in by_original_series.values())  # each series maps to one new series
    for series_id in study["Series"]:
        assert (await http.get(f"/series/{series_id}")).json()["ModifiedFrom"] in source.series
    patient = (await http.get(f"/patients/{source.patient}")).json()
    assert sorted(patient["Studies"]) == sorted([source.study, new_study])  # originals kept
    assert "ModifiedFrom" not in patient


async def test_modify_series_stays_in_its_study(http: httpx.AsyncClient) -> None:
    source = await upload_study(http)
    series = next(iter(source.series))
    body = {"Replace": {"SeriesDescription": "S"}, "Transcode": "1.2.840.10008.1.2.1"}
    content = (await post(http, f"/series/{series}/modify", body)).json()
    assert content["Type"] == "Series" and content["InstancesCount"] == 2
    assert content["Transcode"] == "1.2.840.10008.1.2.1"
    new_series = (await http.get(f"/series/{content['ID']}")).json()
    assert new_series["ParentStudy"] == source.study
    assert new_series["ModifiedFrom"] == series
    assert len((await http.get(f"/studies/{source.study}")).json()["Series"]) == 3


async def test_a_large_instance_is_rewritten_in_a_worker_thread_alike(http: httpx.AsyncClient) -> None:
    """Past INLINE_LIMIT the file is read, rewritten and written off the event loop: same result."""
    data = to_bytes(random_pixels(INLINE_LIMIT + 1024))
    stored = (await http.post("/instances", content=data)).json()
    content = (
        await post(http, f"/studies/{stored['ParentStudy']}/modify", {"Replace": {"StudyDescription": "BIG"}})
    ).json()
    assert content["InstancesCount"] == 1 and content["FailedInstancesCount"] == 0
    study = (await http.get(f"/studies/{content['ID']}")).json()
    assert study["ModifiedFrom"] == stored["ParentStudy"]
    (series,) = study["Series"]
    assert (await http.get(f"/series/{series}")).json()["ModifiedFrom"] == stored["ParentSeries"]
    (instance,) = (await http.get(f"/series/{series}")).json()["Instances"]
    assert (await http.get(f"/instances/{instance}/metadata/ModifiedFrom")).text == stored["ID"]
    modified = await file_of(http, instance)
    assert modified.StudyDescription == "BIG"
    assert modified.PixelData == (await file_of(http, stored["ID"])).PixelData


async def test_modify_patient(http: httpx.AsyncClient) -> None:
    source = await upload_study(http, series=1, per_series=2)
    answer = await post(http, f"/patients/{source.patient}/modify", {"Replace": {"PatientName": "X"}})
    assert answer.status_code == 400
    assert answer.json()["OrthancStatus"] == 8
    assert answer.json()["Details"] == "When modifying a patient, her PatientID is required to be modified"
    body = {"Replace": {"PatientID": "NEW-ID"}, "Force": True}
    content = (await post(http, f"/patients/{source.patient}/modify", body)).json()
    assert content["Type"] == "Patient" and content["ID"] == content["PatientID"] != source.patient
    patient = (await http.get(f"/patients/{content['ID']}")).json()
    assert patient["MainDicomTags"]["PatientID"] == "NEW-ID"
    assert patient["ModifiedFrom"] == source.patient
    study = (await http.get(f"/studies/{patient['Studies'][0]}")).json()
    assert study["MainDicomTags"]["StudyInstanceUID"] != (await file_of(http, source.instances[0])).StudyInstanceUID


async def test_level_rules_and_errors(http: httpx.AsyncClient) -> None:
    source = await upload_study(http, series=1, per_series=1)
    answer = await post(http, f"/studies/{source.study}/modify", {"Replace": {"PatientID": "X"}, "Force": True})
    assert answer.status_code == 400
    body = answer.json()
    assert body["OrthancStatus"] == 8 and body["Message"] == "Bad request"
    assert body["Details"] == "When modifying a study, the parent PatientID cannot be manually modified"
    body = {"Replace": {"StudyInstanceUID": "1.2.3"}, "Force": True}
    details = (await post(http, f"/series/{next(iter(source.series))}/modify", body)).json()["Details"]
    assert details == "When modifying a series, the parent StudyInstanceUID cannot be manually modified"
    answer = await post(http, f"/studies/{source.study}/modify", {"Replace": {"PatientID": "X"}})
    assert answer.json()["Details"].startswith('Marking tag "PatientID" as to be replaced')
    assert (await post(http, "/studies/nope/modify", {})).json()["OrthancStatus"] == 17
    assert (await post(http, f"/series/{source.study}/modify", {})).status_code == 404  # wrong level
    assert (await post(http, f"/studies/{source.study}/modify", "[]")).json()["OrthancStatus"] == 15
    answer = await post(http, f"/studies/{source.study}/modify", {"Transcode": "1.2.3"})
    assert answer.json()["OrthancStatus"] == 15
    answer = await post(http, f"/studies/{source.study}/modify", {"KeepSource": 0})
    assert answer.json()["Details"] == 'Member "KeepSource" should be a Boolean value'
    assert (await http.get("/instances")).json() == source.instances  # nothing was created


async def test_keep_source_false_deletes_the_originals(http: httpx.AsyncClient) -> None:
    source = await upload_study(http)
    content = (await post(http, f"/studies/{source.study}/modify", {"KeepSource": False})).json()
    assert (await http.get(f"/studies/{source.study}")).status_code == 404
    assert sorted((await http.get("/studies")).json()) == [content["ID"]]
    assert len((await http.get("/instances")).json()) == 4


async def test_asynchronous_modification(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http, series=1, per_series=2)
    answer = (await post(http, f"/series/{next(iter(source.series))}/modify", {"Asynchronous": True})).json()
    assert answer["Path"] == f"/jobs/{answer['ID']}"
    assert node.jobs is not None
    record = node.jobs.get(answer["ID"])
    assert record is not None
    await node.jobs.wait_completed(record)
    job = (await http.get(f"/jobs/{answer['ID']}")).json()
    assert job["Type"] == "ResourceModification" and job["State"] == "Success" and job["Progress"] == 100
    assert job["Content"]["Type"] == "Series" and job["Content"]["InstancesCount"] == 2


async def test_anonymize_study_makes_a_new_patient(http: httpx.AsyncClient) -> None:
    source = await upload_study(http)
    content = (await post(http, f"/studies/{source.study}/anonymize", {})).json()
    assert content["IsAnonymization"] is True and content["Type"] == "Study"
    assert content["PatientID"] != source.patient
    patient = (await http.get(f"/patients/{content['PatientID']}")).json()
    assert patient["AnonymizedFrom"] == source.patient
    assert patient["MainDicomTags"]["PatientName"] == "Anonymized1"
    assert patient["Studies"] == [content["ID"]]
    study = (await http.get(f"/studies/{content['ID']}")).json()
    assert study["AnonymizedFrom"] == source.study
    assert len(study["Series"]) == 2
    assert len(await instances_below(http, "studies", content["ID"])) == 4
    files = [await file_of(http, i["ID"]) for i in await instances_below(http, "studies", content["ID"])]
    assert len({f.PatientID for f in files}) == 1
    assert {str(f.PatientName) for f in files} == {"Anonymized1"}  # one number for the whole job


async def test_bulk_routes(http: httpx.AsyncClient) -> None:
    first = await upload_study(http, series=1, per_series=2, patient="A")
    second = await upload_study(http, series=1, per_series=1, patient="B")
    body = {"Resources": [first.study, second.instances[0]], "Replace": {"PatientName": "Y"}}
    content = (await post(http, "/tools/bulk-modify", body)).json()
    assert content["InstancesCount"] == 3 and content["IsAnonymization"] is False
    types = [r["Type"] for r in content["Resources"]]
    assert types == ["Instance"] * 3 + ["Series"] * 2 + ["Study"] * 2 + ["Patient"] * 2
    instances = [r["ID"] for r in content["Resources"][:3]]
    assert instances == sorted(instances)
    assert {r["ID"] for r in content["Resources"] if r["Type"] == "Study"} == {first.study, second.study}
    assert all(r["Path"] == f"/{Level[r['Type'].upper()].plural}/{r['ID']}" for r in content["Resources"])
    # Level overrides the deduction: a study level creates new studies.
    content = (await post(http, "/tools/bulk-modify", {"Resources": [first.study], "Level": "Study"})).json()
    new_studies = [r["ID"] for r in content["Resources"] if r["Type"] == "Study"]
    assert len(new_studies) == 1 and new_studies[0] != first.study
    anonymized = (await post(http, "/tools/bulk-anonymize", {"Resources": [first.patient, second.patient]})).json()
    patients = [r["ID"] for r in anonymized["Resources"] if r["Type"] == "Patient"]
    assert len(patients) == 2 and not {first.patient, second.patient} & set(patients)
    assert (await post(http, "/tools/bulk-modify", {"Resources": ["nope"]})).json()["OrthancStatus"] == 17
    answer = (await post(http, "/tools/bulk-modify", {})).json()
    assert answer["Details"] == "List of strings expected in field: Resources"
    assert (await post(http, "/tools/bulk-modify", {"Resources": [], "Level": "Foo"})).json()["OrthancStatus"] == 3
    empty = (await post(http, "/tools/bulk-anonymize", {"Resources": []})).json()
    assert empty["InstancesCount"] == 0 and empty["Resources"] == []


async def test_a_reloaded_job_keeps_its_identifier_map(http: httpx.AsyncClient, node: NodeContext) -> None:
    """A job saved half-way and reloaded continues with the same new study."""
    source = await upload_study(http)
    plan = parse_modify_request({}, level=Level.STUDY, job=True)
    modification = ResourceModification(plan, Level.STUDY, Origin())
    job = ResourceModificationJob(modification, await instances_of(node, [source.study]))
    await job.step(node)
    await job.step(node)
    saved = json.loads(json.dumps(job.serialize()))
    reloaded = ResourceModificationJob.deserialize(saved)
    assert reloaded.content() == job.content()
    while reloaded.progress() < 1:
        await reloaded.step(node)
    assert reloaded.content()["InstancesCount"] == 4
    new_study = reloaded.content()["ID"]
    assert len(await instances_below(http, "studies", new_study)) == 4
    assert len((await http.get(f"/studies/{new_study}")).json()["Series"]) == 2


async def test_a_vanished_instance_is_counted_as_failed(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http, series=1, per_series=2)
    plan = parse_modify_request({"KeepSource": False}, level=Level.SERIES, job=True)
    job = ResourceModificationJob(ResourceModification(plan, Level.SERIES, Origin()), source.instances)
    await http.delete(f"/instances/{source.instances[0]}")
    while job.progress() < 1:
        await job.step(node)
    assert job.content()["FailedInstancesCount"] == 1
    assert job.content()["InstancesCount"] == 2
    assert len(await instances_below(http, "series", job.content()["ID"])) == 1
    assert (await http.get(f"/series/{next(iter(source.series))}")).status_code == 404  # the other source deleted


async def test_an_instance_deleted_after_its_file_was_looked_up_is_counted_as_failed(
    http: httpx.AsyncClient, node: NodeContext
) -> None:
    source = await upload_study(http, series=1, per_series=3)
    plan = parse_modify_request({}, level=Level.SERIES, job=True)
    job = ResourceModificationJob(ResourceModification(plan, Level.SERIES, Origin()), source.instances)
    await job.step(node)  # the files of all three are looked up with the first one's
    await http.delete(f"/instances/{source.instances[1]}")
    while job.progress() < 1:
        await job.step(node)
    assert (job.content()["FailedInstancesCount"], job.content()["InstancesCount"]) == (1, 3)
    assert len(await instances_below(http, "series", job.content()["ID"])) == 2


@pytest.mark.skipif(not HIERARCHICAL.is_dir(), reason="shared testdata HierarchicalAnonymization is absent")
async def test_anonymization_keeps_hierarchy_and_references(http: httpx.AsyncClient) -> None:
    for path in sorted(HIERARCHICAL.rglob("*")):
        if path.is_file() and path.suffix != ".json":
            assert (await http.post("/instances", content=path.read_bytes())).status_code == 200
    checked: set[str] = set()
    for patient in (await http.get("/patients")).json():
        before = (await http.get(f"/patients/{patient}/statistics")).json()
        content = (await post(http, f"/patients/{patient}/anonymize", {})).json()
        after = (await http.get(f"/patients/{content['ID']}/statistics")).json()
        for key in ("CountStudies", "CountSeries", "CountInstances"):
            assert after[key] == before[key]
        files = [await file_of(http, i["ID"]) for i in await instances_below(http, "patients", content["ID"])]
        uids = (
            {f.SOPInstanceUID for f in files}
            | {f.SeriesInstanceUID for f in files}
            | {f.StudyInstanceUID for f in files}
        )
        frames = {f.FrameOfReferenceUID for f in files if "FrameOfReferenceUID" in f}
        for ds in files:
            checked.add(ds.Modality)
            if ds.Modality == "RTSTRUCT":
                frame = ds.ReferencedFrameOfReferenceSequence[0]
                assert frame.FrameOfReferenceUID in frames
                study = frame.RTReferencedStudySequence[0]
                assert study.ReferencedSOPInstanceUID == ds.StudyInstanceUID
                assert study.RTReferencedSeriesSequence[0].SeriesInstanceUID in uids
                contours = study.RTReferencedSeriesSequence[0].ContourImageSequence
                assert uids & {c.ReferencedSOPInstanceUID for c in contours}  # the CT stored with it
            if ds.Modality == "PR":
                referenced = ds.ReferencedSeriesSequence[0]
                assert referenced.SeriesInstanceUID in uids
                assert referenced.ReferencedImageSequence[0].ReferencedSOPInstanceUID in uids
            if ds.Modality == "SR":
                evidence = ds.CurrentRequestedProcedureEvidenceSequence[0]
                assert evidence.StudyInstanceUID == ds.StudyInstanceUID
                series = evidence.ReferencedSeriesSequence[0]
                assert series.SeriesInstanceUID in uids
                assert series.ReferencedSOPSequence[0].ReferencedSOPInstanceUID in uids
    assert {"RTSTRUCT", "PR", "SR"} <= checked
