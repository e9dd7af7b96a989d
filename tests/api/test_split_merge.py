"""/studies/{id}/split and /studies/{id}/merge: SplitStudy and MergeStudy jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from node.context import NodeContext
from tests.support.datasets import make_dataset, to_bytes
from tests.support.jobs import finished, gate_at, pause_at
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error, file_of, get_json, post
from tests.support.studies import upload_study


async def refused(http: httpx.AsyncClient, path: str, body: Any, status: int, code: int, details: str | None) -> None:
    """The request fails with Orthanc's error ``code``, its Details exactly ``details`` (None: none)."""
    answer = assert_error(await post(http, path, body), status, code)
    assert answer.get("Details") == details


# -- split -----------------------------------------------------------------------------------


async def test_split_moves_series_and_instances_to_a_new_study(http: httpx.AsyncClient) -> None:
    source = await upload_study(http, series=3, AccessionNumber="ACC", ReferringPhysicianName="REF")
    series = list(source.series)
    single = source.series[series[1]][0]
    originals = {(await file_of(http, i)).SOPInstanceUID for i in source.instances}
    body = {
        "Series": [series[0]],
        "Instances": [single],
        "Replace": {"StudyDescription": "SPLIT", "PatientName": "NEW^NAME"},
        "Remove": ["AccessionNumber"],
    }
    answer = await post(http, f"/studies/{source.study}/split", body)
    assert answer.status_code == 200, answer.text
    content = answer.json()
    target = content["TargetStudy"]
    assert content == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 3,
        "TargetStudy": target,
        "TargetStudyUID": content["TargetStudyUID"],
    }
    study = await get_json(http, f"/studies/{target}")
    assert study["MainDicomTags"]["StudyInstanceUID"] == content["TargetStudyUID"]
    assert study["MainDicomTags"]["StudyDescription"] == "SPLIT"
    assert "AccessionNumber" not in study["MainDicomTags"]
    assert study["ParentPatient"] == source.patient  # same PatientID: same patient
    assert "ModifiedFrom" not in study  # as Orthanc: a split records no provenance
    assert len(study["Series"]) == 2  # one new series per source series
    moved = await get_json(http, f"/studies/{target}/instances")
    files = [await file_of(http, i["ID"]) for i in moved]
    assert {str(f.PatientName) for f in files} == {"NEW^NAME"}
    assert {str(f.ReferringPhysicianName) for f in files} == {"REF"}  # untouched tags stay
    assert not {f.SOPInstanceUID for f in files} & originals and len({f.SOPInstanceUID for f in files}) == 3
    for series_id in study["Series"]:
        parent = await get_json(http, f"/series/{series_id}")
        assert parent["ParentStudy"] == target and parent["MainDicomTags"]["Modality"] == "CT"
    # KeepSource defaults to false: the moved instances are gone, the rest of the study stays.
    remaining = await get_json(http, f"/studies/{source.study}")
    assert sorted(remaining["Series"]) == sorted(series[1:])
    assert [i["ID"] for i in await get_json(http, f"/series/{series[1]}/instances")] == source.series[series[1]][1:]
    assert (await http.get(f"/series/{series[0]}")).status_code == 404
    jobs = await get_json(http, "/jobs?expand")
    assert [(j["Type"], j["State"], j["Progress"]) for j in jobs] == [("SplitStudy", "Success", 100)]


async def test_split_asynchronous_with_keep_source(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http)
    series = list(source.series)
    # An instance of a named series is moved once.
    body = {"Series": series, "Instances": [source.instances[0]], "KeepSource": True, "Asynchronous": True}
    answer = (await post(http, f"/studies/{source.study}/split", body)).json()
    assert answer == {"ID": answer["ID"], "Path": f"/jobs/{answer['ID']}"}
    await finished(node, answer["ID"])
    job = await get_json(http, answer["Path"])
    assert (job["Type"], job["State"], job["Progress"]) == ("SplitStudy", "Success", 100)
    content = job["Content"]
    assert set(content) == {"Description", "FailedInstancesCount", "InstancesCount", "TargetStudy", "TargetStudyUID"}
    assert content["InstancesCount"] == 4 and content["FailedInstancesCount"] == 0
    assert len((await get_json(http, f"/studies/{content['TargetStudy']}"))["Series"]) == 2
    assert sorted((await get_json(http, f"/studies/{source.study}"))["Series"]) == sorted(series)  # kept
    assert len(await get_json(http, "/instances")) == 8


async def test_split_errors(http: httpx.AsyncClient) -> None:
    source = await upload_study(http, series=1, per_series=1)
    other = await upload_study(http, series=1, per_series=1, patient="OTHER")
    study, series, instance = source.study, next(iter(source.series)), source.instances[0]
    split = f"/studies/{study}/split"

    missing = 'Both the "Series" and the "Instances" fields are missing'
    await refused(http, split, {}, 400, 8, missing)
    await refused(http, split, {"Series": [], "Instances": []}, 400, 8, missing)
    await refused(http, "/studies/nope/split", {"Series": [series]}, 404, 17, "Cannot split unknown study nope")
    await refused(http, f"/studies/{series}/split", {}, 404, 17, f"Cannot split unknown study {series}")
    foreign_series = next(iter(other.series))
    details = f"This series does not belong to the study to be split: {foreign_series}"
    await refused(http, split, {"Series": [foreign_series]}, 404, 17, details)
    details = f"This instance does not belong to the study to be split: {other.instances[0]}"
    await refused(http, split, {"Instances": [other.instances[0]]}, 404, 17, details)
    await refused(http, split, {"Series": ["nope"]}, 404, 17, None)
    await refused(http, split, {"Series": "x"}, 400, 15, "List of strings expected in field: Series")
    await refused(http, split, {"Instances": [1]}, 400, 15, "List of strings expected in field: Instances")
    out = "Cannot modify the following tag while splitting a study (not in the patient/study modules): "
    await refused(http, split, {"Series": [series], "Replace": {"Modality": "MR"}}, 400, 3, out + "Modality (0008,0060)")
    await refused(http, split, {"Series": [series], "Remove": ["Modality"]}, 400, 3, out + "Modality (0008,0060)")
    body = {"Series": [series], "Replace": {"StudyInstanceUID": "1.2"}}
    await refused(http, split, body, 400, 3, out + "StudyInstanceUID (0020,000d)")
    body = {"Series": [series], "Remove": ["0009,0010"]}
    await refused(http, split, body, 400, 3, out + "PrivateCreator (0009,0010)")
    await refused(http, split, {"Series": [series], "Replace": {"PatientName": 1}}, 400, 15, None)
    await refused(http, split, {"Series": [series], "Replace": ["PatientName"]}, 400, 15, None)
    await refused(http, split, {"Series": [series], "Remove": "PatientName"}, 400, 15, None)
    await refused(http, split, {"Series": [series], "Remove": [3]}, 400, 15, None)
    details = "Boolean value expected in field: KeepSource"
    await refused(http, split, {"Instances": [instance], "KeepSource": 1}, 400, 15, details)
    details = "Boolean value expected in field: Synchronous"
    await refused(http, split, {"Instances": [instance], "Synchronous": 1}, 400, 15, details)
    await refused(http, split, "[]", 400, 15, "The body must be a JSON object")
    assert sorted(await get_json(http, "/instances")) == sorted(source.instances + other.instances)
    assert await get_json(http, "/jobs") == []


async def test_permissive_split_skips_an_instance_that_cannot_be_rewritten(http: httpx.AsyncClient) -> None:
    """A source whose EthnicGroup is binary (US) refuses the text value: the step fails."""
    source = await upload_study(http, series=1, per_series=2)
    odd = make_dataset(patient_id="PAT", study_uid=(await file_of(http, source.instances[0])).StudyInstanceUID)
    odd.add_new(0x00102160, "US", 7)
    bad = (await http.post("/instances", content=to_bytes(odd))).json()["ID"]
    body = {"Instances": [*source.instances, bad], "Replace": {"EthnicGroup": "abc"}}
    details = 'While creating a DICOM instance, tag (0010,2160) has out-of-range value: "abc"'
    assert_error(await post(http, f"/studies/{source.study}/split", body), 400, 15, details)
    assert len(await get_json(http, f"/studies/{source.study}/instances")) == 3  # a failed job deletes nothing

    content = (await post(http, f"/studies/{source.study}/split", {**body, "Permissive": True})).json()
    assert (content["InstancesCount"], content["FailedInstancesCount"]) == (3, 1)
    moved = await get_json(http, f"/studies/{content['TargetStudy']}/instances")
    assert len(moved) == 2
    assert {(await file_of(http, i["ID"])).EthnicGroup for i in moved} == {"abc"}
    # Only the moved sources are deleted: the one that failed stays where it was.
    assert [i["ID"] for i in await get_json(http, f"/studies/{source.study}/instances")] == [bad]
    jobs = {j["State"] for j in await get_json(http, "/jobs?expand")}
    assert jobs == {"Failure", "Success"}


async def test_pause_and_resume_in_the_middle_of_a_50_instance_split(
    http: httpx.AsyncClient, node: NodeContext
) -> None:
    source = await upload_study(http, series=2, per_series=25)
    body = {"Series": list(source.series), "Asynchronous": True}
    async with gate_at(node, after=20) as gate:
        job_id = (await post(http, f"/studies/{source.study}/split", body)).json()["ID"]
        await pause_at(node, http, job_id, gate)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["Progress"]) == ("Paused", round(20 / 51 * 100))
    target = job["Content"]["TargetStudy"]
    assert job["Content"]["InstancesCount"] == 50
    assert len(await get_json(http, f"/studies/{target}/instances")) == 20
    assert len(await get_json(http, f"/studies/{source.study}/instances")) == 50  # sources go at the very end

    assert (await http.post(f"/jobs/{job_id}/resume", content="")).status_code == 200
    await finished(node, job_id)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["Progress"], job["Content"]["TargetStudy"]) == ("Success", 100, target)
    assert job["Content"]["FailedInstancesCount"] == 0
    study = await get_json(http, f"/studies/{target}")
    assert len(study["Series"]) == 2  # the resumed job kept its map of new series UIDs
    moved = await get_json(http, f"/studies/{target}/instances")
    assert len(moved) == 50 and len({i["MainDicomTags"]["SOPInstanceUID"] for i in moved}) == 50
    assert (await http.get(f"/studies/{source.study}")).status_code == 404
    assert sorted(await get_json(http, "/instances")) == sorted(i["ID"] for i in moved)


async def test_cancel_in_the_middle_keeps_the_sources(http: httpx.AsyncClient, node: NodeContext) -> None:
    source = await upload_study(http, series=1, per_series=4)
    body = {"Series": list(source.series), "Asynchronous": True}
    async with gate_at(node, after=2) as gate:
        job_id = (await post(http, f"/studies/{source.study}/split", body)).json()["ID"]
        with trio.fail_after(30):
            await gate.reached.wait()
        assert (await http.post(f"/jobs/{job_id}/cancel", content="")).status_code == 200
    await finished(node, job_id)
    job = await get_json(http, f"/jobs/{job_id}")
    assert (job["State"], job["ErrorCode"]) == ("Failure", 37)
    assert len(await get_json(http, f"/studies/{job['Content']['TargetStudy']}/instances")) == 2
    assert len(await get_json(http, f"/studies/{source.study}/instances")) == 4


# -- merge -----------------------------------------------------------------------------------


async def test_merge_series_from_another_patient_takes_the_target_patient(http: httpx.AsyncClient) -> None:
    target = await upload_study(
        http, patient="A", series=1, patient_name="TARGET^P", ReferringPhysicianName="REF", PatientBirthDate="19700101"
    )
    source = await upload_study(
        http, patient="B", patient_name="SOURCE^P", AccessionNumber="ACCB", PatientSex="F", InstitutionName="INST"
    )
    series = list(source.series)
    moved_sources = [*source.series[series[0]], source.series[series[1]][0]]
    body = {"Resources": [series[0], source.series[series[1]][0]]}
    originals = {(await file_of(http, i)).SOPInstanceUID for i in source.instances}
    answer = await post(http, f"/studies/{target.study}/merge", body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 3,
        "TargetStudy": target.study,
    }
    study = await get_json(http, f"/studies/{target.study}")
    assert study["ParentPatient"] == target.patient
    assert len(study["Series"]) == 3  # its own, plus one new series per source series
    new_series = [s for s in study["Series"] if s not in target.series]
    for series_id in new_series:
        assert (await get_json(http, f"/series/{series_id}"))["ParentStudy"] == target.study
    target_file = await file_of(http, target.instances[0])
    moved = [i["ID"] for s in new_series for i in await get_json(http, f"/series/{s}/instances")]
    assert len(moved) == 3
    for instance in moved:
        data = await file_of(http, instance)
        assert (data.PatientID, str(data.PatientName)) == ("A", "TARGET^P")
        assert (data.StudyInstanceUID, data.PatientBirthDate) == (target_file.StudyInstanceUID, "19700101")
        assert str(data.ReferringPhysicianName) == "REF"  # a study-module tag of the target
        assert "AccessionNumber" not in data and "PatientSex" not in data  # module tags the target lacks
        assert data.InstitutionName == "INST"  # not in the patient/study modules: kept
        assert data.SOPInstanceUID not in originals
    assert (await get_json(http, f"/patients/{target.patient}"))["Studies"] == [target.study]
    # KeepSource defaults to false: what moved is gone from patient B, the rest stays.
    remaining = await get_json(http, f"/studies/{source.study}/instances")
    assert [i["ID"] for i in remaining] == [i for i in source.instances if i not in moved_sources]
    assert (await get_json(http, f"/patients/{source.patient}"))["Studies"] == [source.study]


async def test_merge_whole_study_keeping_then_deleting_the_source(http: httpx.AsyncClient, node: NodeContext) -> None:
    target = await upload_study(http, patient="A", series=1, per_series=1)
    source = await upload_study(http, patient="B")
    body = {"Resources": [source.study], "KeepSource": True, "Asynchronous": True}
    answer = (await post(http, f"/studies/{target.study}/merge", body)).json()
    await finished(node, answer["ID"])
    job = await get_json(http, answer["Path"])
    assert (job["Type"], job["State"], job["Progress"]) == ("MergeStudy", "Success", 100)
    assert job["Content"] == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 4,
        "TargetStudy": target.study,
    }
    assert len(await get_json(http, f"/studies/{target.study}/instances")) == 5
    assert sorted((await get_json(http, f"/studies/{source.study}"))["Series"]) == sorted(source.series)

    content = (await post(http, f"/studies/{target.study}/merge", {"Resources": [source.study]})).json()
    assert content["InstancesCount"] == 4
    assert len((await get_json(http, f"/studies/{target.study}"))["Series"]) == 5  # new series again
    assert (await http.get(f"/studies/{source.study}")).status_code == 404
    assert (await http.get(f"/patients/{source.patient}")).status_code == 404
    assert await get_json(http, "/patients") == [target.patient]


async def test_merge_errors(http: httpx.AsyncClient) -> None:
    target = await upload_study(http, series=1, per_series=1)
    source = await upload_study(http, series=1, per_series=1, patient="OTHER")
    merge = f"/studies/{target.study}/merge"
    own_series = next(iter(target.series))

    await refused(http, "/studies/nope/merge", {"Resources": "x"}, 404, 17, "Cannot merge into an unknown study: nope")
    details = f"Cannot merge into an unknown study: {own_series}"
    await refused(http, f"/studies/{own_series}/merge", {"Resources": [source.study]}, 404, 17, details)
    for body in ({}, {"Resources": "x"}, {"Resources": [1]}, "[]"):
        await refused(http, merge, body, 400, 15, "List of strings expected in field: Resources")
    await refused(http, merge, {"Resources": ["nope"]}, 404, 17, "Cannot find this resource: nope")
    details = f"This resource is neither a study, nor a series, nor an instance: {source.patient} is a Patient"
    await refused(http, merge, {"Resources": [source.patient]}, 404, 17, details)
    details = f"Cannot merge a study into the same study: {target.study}"
    await refused(http, merge, {"Resources": [target.study]}, 404, 17, details)
    details = f"Cannot merge series {own_series} into its parent study {target.study}"
    await refused(http, merge, {"Resources": [source.study, own_series]}, 404, 17, details)
    details = f"Cannot merge instance {target.instances[0]} into its parent study {target.study}"
    await refused(http, merge, {"Resources": [target.instances[0]]}, 404, 17, details)
    details = "Boolean value expected in field: KeepSource"
    await refused(http, merge, {"Resources": [source.study], "KeepSource": "x"}, 400, 15, details)
    details = "Integer value expected in field: Priority"
    await refused(http, merge, {"Resources": [source.study], "Priority": "high"}, 400, 15, details)
    assert sorted(await get_json(http, "/instances")) == sorted(target.instances + source.instances)
    assert await get_json(http, "/jobs") == []
    empty = (await post(http, merge, {"Resources": []})).json()
    assert empty == {
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 0,
        "TargetStudy": target.study,
    }


async def test_a_paused_merge_resumes_after_a_restart(tmp_path: Path) -> None:
    config = node_config(tmp_path, DicomServerEnabled=False)
    async with trio.open_nursery() as nursery:
        node = await start_node(nursery, config)
        async with client_of(node) as http:
            target = await upload_study(http, patient="A", series=1, per_series=1)
            source = await upload_study(http, patient="B", series=2, per_series=3)
            body = {"Resources": [source.study], "Asynchronous": True}
            async with gate_at(node, after=3) as gate:
                job_id = (await post(http, f"/studies/{target.study}/merge", body)).json()["ID"]
                await pause_at(node, http, job_id, gate)
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        node = await start_node(nursery, config)
        async with client_of(node) as http:
            job = await get_json(http, f"/jobs/{job_id}")
            assert (job["Type"], job["State"], job["Progress"]) == ("MergeStudy", "Paused", round(3 / 7 * 100))
            assert len(await get_json(http, f"/studies/{target.study}/instances")) == 4
            assert (await http.post(f"/jobs/{job_id}/resume", content="")).status_code == 200
            await finished(node, job_id)
            job = await get_json(http, f"/jobs/{job_id}")
            assert (job["State"], job["Content"]["InstancesCount"]) == ("Success", 6)
            study = await get_json(http, f"/studies/{target.study}")
            assert len(study["Series"]) == 3  # the reloaded job kept its map of new series UIDs
            assert len(await get_json(http, f"/studies/{target.study}/instances")) == 7
            assert (await http.get(f"/studies/{source.study}")).status_code == 404
        nursery.cancel_scope.cancel()
