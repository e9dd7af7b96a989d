"""ZIP archives and DICOMDIR media, synchronous (streamed) and asynchronous (job outputs)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import trio
import trio.testing
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from node.context import NodeContext
from node.jobs.record import JobRecord, JobState
from node.jobs.types import archive as archive_types
from node.jobs.types.archive import FileDelivery, MediaJob, archive_folder
from node.services.archive_names import file_name, folder_name
from node.services.zip_writer import ZipWriter, deflate
from node.storage.settings import StorageSettings
from tests.support.datasets import make_dicom, random_pixels
from tests.support.dcmtk import dcmtk_tool
from tests.support.jobs import finished
from tests.support.node import jobs_of, node_config, start_node
from tests.support.rest import assert_error, upload

ZIP = "application/zip"


def open_zip(data: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None  # every CRC checks
    return archive


def uids_in(archive: zipfile.ZipFile, names: list[str]) -> list[str]:
    """Each member parsed by pydicom: its SOPInstanceUID."""
    return [pydicom.dcmread(io.BytesIO(archive.read(name))).SOPInstanceUID for name in names]


async def knee_like_study(http: httpx.AsyncClient) -> dict[str, Any]:
    """A study of 2 series (3 + 2 instances) with names that need cleaning, as in the spec's examples."""
    common = {
        "patient_id": "5Yp0E",
        "patient_name": "BRAINIX",
        "study_uid": "1.2.3.100",
        "AccessionNumber": "0",
        "StudyDescription": "IRM cérébrale, neuro-crâne",
        "SpecificCharacterSet": "ISO_IR 100",
    }
    sops: dict[str, list[str]] = {"T2": [], "FLAIR": []}
    answer: dict[str, Any] = {}
    for series, description, count in (("T2", "T2W/FE-EPI", 3), ("FLAIR", "sT2W/FLAIR", 2)):
        for number in range(1, count + 1):
            sop = f"1.2.3.100.{len(series)}.{number}"
            data = make_dicom(
                series_uid=f"1.2.3.100.{len(series)}",
                sop_uid=sop,
                instance_number=number,
                modality="MR",
                SeriesDescription=description,
                **common,
            )
            answer = await upload(http, data)
            sops[series].append(sop)
    return {"study": answer["ParentStudy"], "patient": answer["ParentPatient"], "sops": sops}


async def job_of_type(node: NodeContext, type_name: str) -> JobRecord:
    records = [r for r in jobs_of(node).records() if r.job.type_name == type_name]
    assert len(records) == 1
    return records[0]


# -- synchronous archives ---------------------------------------------------------


async def test_study_archive_layout_and_content(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = await knee_like_study(http)
    answer = await http.get(f"/studies/{study['study']}/archive")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == ZIP
    assert answer.headers["content-disposition"] == f'filename="{study["study"]}.zip"'
    assert "content-length" not in answer.headers  # streamed as it is built
    archive = open_zip(answer.content)
    assert archive.comment == b"Created by Orthanc"
    folder = "5Yp0E BRAINIX/0 IRM crbrale neurocrne"
    # Series folders in the order of their Orthanc IDs, instances in index order, counters per series.
    names = archive.namelist()
    t2 = [f"{folder}/MR T2WFEEPI/MR00000{i}.dcm" for i in range(3)]
    flair = [f"{folder}/MR sT2WFLAIR/MR00000{i}.dcm" for i in range(2)]
    assert sorted(names) == sorted(t2 + flair)
    assert uids_in(archive, t2) == study["sops"]["T2"]
    assert uids_in(archive, flair) == study["sops"]["FLAIR"]
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    # The synchronous job is registered, done, and keeps no output.
    record = await job_of_type(node, "Archive")
    job = (await http.get(f"/jobs/{record.id}")).json()
    assert job["State"] == "Success" and job["Progress"] == 100
    assert job["Content"]["Description"] == "REST API"
    assert job["Content"]["InstancesCount"] == 5
    assert job["Content"]["ArchiveSize"] == str(len(answer.content))
    missing = await http.get(f"/jobs/{record.id}/archive")
    assert missing.status_code == 404 and missing.json()["OrthancStatus"] == 7


async def test_stored_bytes_are_archived_unchanged(http: httpx.AsyncClient) -> None:
    data = make_dicom(modality="X", PatientName="")
    series = (await upload(http, data))["ParentSeries"]
    answer = await http.post(f"/series/{series}/archive", json={})
    archive = open_zip(answer.content)
    # One-letter modality: that letter and 7 digits; no patient name or series description: one value.
    assert archive.namelist() == ["PAT1/Test study/X/X0000000.dcm"]
    assert archive.read("PAT1/Test study/X/X0000000.dcm") == data


async def test_folder_names_fallbacks_and_duplicates(http: httpx.AsyncClient) -> None:
    study = "1.2.3.200"
    # Three series whose names clean to the same folder name, without patient, study or modality names.
    for n, description in enumerate(("Same/", "Same", "S*ame")):
        tags = {"StudyDescription": "", "SeriesDescription": description}
        data = make_dicom(
            patient_id="", patient_name="", study_uid=study, series_uid=f"{study}.{n}", modality="", **tags
        )
        await upload(http, data)
    studies = (await http.get("/studies")).json()
    archive = open_zip((await http.get(f"/studies/{studies[0]}/archive")).content)
    assert sorted({name.split("/")[2] for name in archive.namelist()}) == ["Same", "Same-2", "Same-3"]
    for name in archive.namelist():
        patient, study_folder, _, file = name.split("/")
        assert (patient, study_folder) == ("Unknown Patient", "Unknown Study")
        assert file == "00000000.dcm"  # no modality: 8 digits


def test_names_of_the_spec_examples() -> None:
    assert folder_name("0", "IRM cérébrale, neuro-crâne", "Unknown Study") == "0 IRM crbrale neurocrne"
    assert folder_name("MR", "T2W/FE-EPI", "Unknown Series") == "MR T2WFEEPI"
    assert folder_name("ozp00SjY2xG", "KNIX", "Unknown Patient") == "ozp00SjY2xG KNIX"
    assert folder_name("ID", "DOE^JOHN^^", "Unknown Patient") == "ID DOE JOHN"
    assert folder_name("", "", "Unknown Patient") == "Unknown Patient"
    # Only punctuation: Orthanc would make an empty folder name; we use the fallback.
    assert folder_name("", "^/", "Unknown Patient") == "Unknown Patient"
    assert [file_name(m, 7) for m in ("MR", "ct", "X", "")] == [
        "MR000007.dcm",
        "CT000007.dcm",
        "X0000007.dcm",
        "00000007.dcm",
    ]


async def test_create_archive_mixed_levels(http: httpx.AsyncClient) -> None:
    study = await knee_like_study(http)
    other = await upload(http, make_dicom(patient_id="OTHER", patient_name="SMITH"))
    series = (await http.get(f"/studies/{study['study']}/series")).json()
    body = {"Resources": [series[0]["ID"], study["study"], other["ID"]]}
    answer = await http.post("/tools/create-archive", json=body)
    assert answer.headers["content-disposition"] == 'filename="Archive.zip"'
    names = open_zip(answer.content).namelist()
    assert len(names) == 6  # the whole study once, plus the single instance
    assert sum(name.startswith("OTHER SMITH/") for name in names) == 1
    # A bare array is accepted too, and an empty one gives an empty archive.
    assert len(open_zip((await http.post("/tools/create-archive", json=[other["ID"]])).content).namelist()) == 1
    assert open_zip((await http.post("/tools/create-archive", json=[])).content).namelist() == []


async def test_level_in_url_is_not_checked(http: httpx.AsyncClient) -> None:
    """Orthanc 1.10.1 archives whatever resource the ID names, whatever the URL's level."""
    study = await knee_like_study(http)
    answer = await http.get(f"/patients/{study['study']}/archive")
    assert answer.status_code == 200
    assert len(open_zip(answer.content).namelist()) == 5


# -- media ----------------------------------------------------------------------------


def read_dicomdir(archive: zipfile.ZipFile, folder: Path) -> FileSet:
    archive.extractall(folder)
    return FileSet(pydicom.dcmread(folder / "DICOMDIR"))


async def test_media_layout_and_dicomdir(http: httpx.AsyncClient, tmp_path: Path) -> None:
    study = await knee_like_study(http)
    answer = await http.get(f"/studies/{study['study']}/media")
    assert answer.headers["content-disposition"] == f'filename="{study["study"]}.zip"'
    archive = open_zip(answer.content)
    names = archive.namelist()
    assert names == [f"IMAGES/IM{n}" for n in range(5)] + ["DICOMDIR"]  # DICOMDIR written last
    fileset = read_dicomdir(archive, tmp_path / "media")
    dicomdir = pydicom.dcmread(tmp_path / "media" / "DICOMDIR")
    assert dicomdir.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10"
    assert dicomdir.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert dicomdir.FileSetID == "ORTHANC_MEDIA"
    assert dicomdir.FileSetConsistencyFlag == 0
    instances = list(fileset)
    assert sorted(i.SOPInstanceUID for i in instances) == sorted(study["sops"]["T2"] + study["sops"]["FLAIR"])
    for instance in instances:  # each record points at the file holding that instance
        assert pydicom.dcmread(instance.path).SOPInstanceUID == instance.SOPInstanceUID
    records = dicomdir.DirectoryRecordSequence
    kinds = [record.DirectoryRecordType for record in records]
    assert kinds == ["PATIENT", "STUDY", "SERIES", "IMAGE", "IMAGE", "IMAGE", "SERIES", "IMAGE", "IMAGE"] or kinds == [
        "PATIENT", "STUDY", "SERIES", "IMAGE", "IMAGE", "SERIES", "IMAGE", "IMAGE", "IMAGE"
    ]  # fmt: skip
    patient, study_record = records[0], records[1]
    assert (patient.PatientID, str(patient.PatientName)) == ("5Yp0E", "BRAINIX")
    assert study_record.StudyDescription == "IRM cérébrale, neuro-crâne"
    assert study_record.StudyInstanceUID == "1.2.3.100"
    assert all("SeriesDescription" not in r for r in records if r.DirectoryRecordType == "SERIES")  # extended only
    images = [r for r in records if r.DirectoryRecordType == "IMAGE"]
    assert [list(r.ReferencedFileID) for r in images] == [["IMAGES", f"IM{n}"] for n in range(5)]
    assert all(r.ReferencedTransferSyntaxUIDInFile == pydicom.uid.ExplicitVRLittleEndian for r in images)


async def test_media_extended_records(http: httpx.AsyncClient, tmp_path: Path) -> None:
    study = await knee_like_study(http)
    for route, body in (("/tools/create-media-extended", [study["study"]]),
                        ("/tools/create-media", {"Resources": [study["study"]], "Extended": True})):  # fmt: skip
        archive = open_zip((await http.post(route, json=body)).content)
        folder = tmp_path / route.rsplit("/", 1)[1]
        read_dicomdir(archive, folder)
        records = pydicom.dcmread(folder / "DICOMDIR").DirectoryRecordSequence
        descriptions = {r.SeriesDescription for r in records if r.DirectoryRecordType == "SERIES"}
        assert descriptions == {"T2W/FE-EPI", "sT2W/FLAIR"}
    plain = open_zip((await http.post("/tools/create-media", json=[study["study"]])).content)
    read_dicomdir(plain, tmp_path / "plain")
    records = pydicom.dcmread(tmp_path / "plain" / "DICOMDIR").DirectoryRecordSequence
    assert not any("SeriesDescription" in r for r in records)


async def test_dicomdir_accepted_by_dcmtk(http: httpx.AsyncClient, tmp_path: Path) -> None:
    dcmdump = dcmtk_tool("dcmdump")
    if dcmdump is None:
        pytest.skip("DCMTK's dcmdump is not installed")
    study = await knee_like_study(http)
    archive = open_zip((await http.get(f"/studies/{study['study']}/media?extended")).content)
    archive.extractall(tmp_path)
    result = subprocess.run(
        [dcmdump, "-E", str(tmp_path / "DICOMDIR")], capture_output=True, encoding="latin-1", check=False
    )
    assert result.returncode == 0, result.stderr
    assert "ORTHANC_MEDIA" in result.stdout
    assert result.stdout.count('refFileID="IMAGES\\IM') == 5  # dcmdump followed every record's offsets


# -- asynchronous archives ------------------------------------------------------------


def archive_files(node: NodeContext) -> list[Path]:
    folder = archive_folder(node.settings.storage)
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("batch", [1, 3000])
async def test_async_archive_written_in_batches_is_whole(
    http: httpx.AsyncClient, node: NodeContext, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Steps' bytes gathered and written a batch at a time (or each at once) give the same ZIP."""
    study = await knee_like_study(http)
    streamed = (await http.get(f"/studies/{study['study']}/archive")).content
    monkeypatch.setattr(archive_types, "WRITE_BATCH", batch)
    answer = (await http.post(f"/studies/{study['study']}/archive", json={"Asynchronous": True})).json()
    await finished(node, answer["ID"])
    written = (await http.get(f"/jobs/{answer['ID']}/archive")).content
    assert open_zip(written).testzip() is None
    assert {n: open_zip(written).read(n) for n in open_zip(written).namelist()} == {
        n: open_zip(streamed).read(n) for n in open_zip(streamed).namelist()
    }


async def test_async_archive_and_media_outputs(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = await knee_like_study(http)
    first = (await http.post(f"/studies/{study['study']}/archive", json={"Asynchronous": True})).json()
    assert first["Path"] == f"/jobs/{first['ID']}"
    await finished(node, first["ID"])
    job = (await http.get(f"/jobs/{first['ID']}")).json()
    assert (job["Type"], job["State"], job["Progress"]) == ("Archive", "Success", 100)
    output = await http.get(f"/jobs/{first['ID']}/archive")
    assert output.headers["content-type"] == ZIP
    assert output.headers["content-disposition"] == 'filename="archive.zip"'
    assert len(open_zip(output.content).namelist()) == 5
    content = job["Content"]
    assert content["ArchiveSize"] == str(len(output.content)) and content["ArchiveSizeMB"] == 0
    assert content["UncompressedSize"] == str(
        sum(len(open_zip(output.content).read(n)) for n in open_zip(output.content).namelist())
    )
    assert "Transcode" not in content
    assert len(archive_files(node)) == 1

    body = {"Resources": [study["study"]], "Synchronous": False, "Transcode": "1.2.840.10008.1.2.1"}
    second = (await http.post("/tools/create-media", json=body)).json()
    await finished(node, second["ID"])
    job = (await http.get(f"/jobs/{second['ID']}")).json()
    assert job["Type"] == "Media" and job["Content"]["Transcode"] == "1.2.840.10008.1.2.1"
    media = open_zip((await http.get(f"/jobs/{second['ID']}/archive")).content)
    assert media.namelist()[-1] == "DICOMDIR"
    # MediaArchiveSize 1: the newer output evicted the older one, and its file.
    evicted = await http.get(f"/jobs/{first['ID']}/archive")
    assert evicted.status_code == 404
    assert evicted.json()["Details"] == "Job has no such output: archive"
    assert len(archive_files(node)) == 1


async def submit_paused_media(node: NodeContext, study: str) -> JobRecord:
    """A media job submitted in-process and paused before any worker ran it."""
    job = MediaJob([study], FileDelivery(archive_folder(node.settings.storage)))
    record = await jobs_of(node).submit(job)
    assert await jobs_of(node).pause(record.id)  # no checkpoint between: still Pending
    assert record.state is JobState.PAUSED
    return record


async def test_pause_mid_job_then_resume_gives_a_complete_archive(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = await knee_like_study(http)
    record = await submit_paused_media(node, study["study"])
    job: MediaJob = record.job  # type: ignore[assignment]
    assert jobs_of(node).resume(record.id)
    while job.builder is not None and job.builder.position < 3:
        await trio.sleep(0)
    await jobs_of(node).pause(record.id)
    assert record.state is JobState.PAUSED
    paused = (await http.get(f"/jobs/{record.id}")).json()
    assert 0 < paused["Progress"] < 100 and int(paused["Content"]["ArchiveSize"]) > 0
    assert jobs_of(node).resume(record.id)
    await finished(node, record.id)
    assert record.state is JobState.SUCCESS
    media = open_zip((await http.get(f"/jobs/{record.id}/archive")).content)
    assert media.namelist() == [f"IMAGES/IM{n}" for n in range(5)] + ["DICOMDIR"]


async def test_cancel_removes_the_temporary_file_and_resubmit_is_refused(
    http: httpx.AsyncClient, node: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_types, "WRITE_BATCH", 1)  # each step written at once: a half-written file
    study = await knee_like_study(http)
    record = await submit_paused_media(node, study["study"])
    job: MediaJob = record.job  # type: ignore[assignment]
    jobs_of(node).resume(record.id)
    while job.builder is not None and job.builder.position < 3:
        await trio.sleep(0)
    await jobs_of(node).pause(record.id)
    assert len(archive_files(node)) == 1  # half written
    assert (await http.post(f"/jobs/{record.id}/cancel")).status_code == 200
    await record.stop_hooks.wait_value(0)
    assert record.state is JobState.FAILURE and record.error_code == 37
    assert archive_files(node) == []
    refused = await http.post(f"/jobs/{record.id}/resubmit")
    assert refused.status_code == 500
    assert refused.json()["OrthancStatus"] == 6
    assert refused.json()["Details"] == "Cannot resubmit the creation of an archive"


async def test_failure_removes_the_temporary_file(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = await knee_like_study(http)
    instances = (await http.get(f"/studies/{study['study']}/instances")).json()
    attachment = await node.index.dicom_attachment(instances[-1]["ID"])
    assert attachment is not None
    node.files.path_of(attachment.uuid).write_bytes(b"not DICOM")  # the DICOMDIR cannot read it
    answer = (await http.post(f"/studies/{study['study']}/media", json={"Asynchronous": True})).json()
    record = await finished(node, answer["ID"])
    assert record.state is JobState.FAILURE and record.error_code == 15
    await record.stop_hooks.wait_value(0)
    assert archive_files(node) == []


async def test_deleted_instances_are_skipped(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = await knee_like_study(http)
    record = await submit_paused_media(node, study["study"])
    instances = (await http.get(f"/studies/{study['study']}/instances")).json()
    assert (await http.delete(f"/instances/{instances[0]['ID']}")).status_code == 200
    jobs_of(node).resume(record.id)
    await finished(node, record.id)
    job = (await http.get(f"/jobs/{record.id}")).json()
    assert job["State"] == "Success" and job["Content"]["InstancesCount"] == 5  # fixed at submission
    media = open_zip((await http.get(f"/jobs/{record.id}/archive")).content)
    assert len(media.namelist()) == 5  # 4 images and the DICOMDIR


async def test_stale_archives_removed_at_start_up(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path)
    stale = archive_folder(StorageSettings.from_config(config)) / "left-by-a-crash.zip"  # the folder is made on first use
    stale.write_bytes(b"PK")
    await start_node(nursery, config)
    assert not stale.exists()


# -- streaming ----------------------------------------------------------------------


def big_instance(number: int, size: int) -> Dataset:
    return random_pixels(size, study_uid="1.2.3.300", series_uid="1.2.3.300.1", instance_number=number)


async def test_sync_archive_streams_before_it_is_built(http: httpx.AsyncClient, node: NodeContext) -> None:
    size, count = 2 * 1024 * 1024, 24  # 48 MB that deflate cannot shrink
    for number in range(count):
        answer = await upload(http, big_instance(number, size))
    series = answer["ParentSeries"]
    received = bytearray()
    async with http.stream("GET", f"/series/{series}/archive") as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        chunks = response.aiter_raw()
        received += await chunks.__anext__()
        await trio.testing.wait_all_tasks_blocked()
        record = await job_of_type(node, "Archive")
        built = int(record.job.content()["ArchiveSize"])
        # The job waits for this reader: it is far from the end while the first bytes are here.
        assert record.state is JobState.RUNNING
        assert built < count * size / 4
        async for chunk in chunks:
            received += chunk
    await jobs_of(node).wait_completed(record)
    assert len(open_zip(bytes(received)).namelist()) == count
    assert record.job.content()["ArchiveSize"] == str(len(received))


async def test_client_leaving_fails_the_sync_job(http: httpx.AsyncClient, node: NodeContext) -> None:
    for number in range(12):
        answer = await upload(http, big_instance(number, 2 * 1024 * 1024))
    async with http.stream("GET", f"/series/{answer['ParentSeries']}/archive") as response:
        await response.aiter_raw().__anext__()
    # httpx closes the connection of a response left unread.
    record = await job_of_type(node, "Archive")
    with trio.fail_after(30):
        await jobs_of(node).wait_completed(record)
    assert record.state is JobState.FAILURE
    assert record.error_code == 9
    assert record.error_details == "HTTP client has disconnected while creating an archive in synchronous mode"


async def test_cancel_truncates_the_stream(http: httpx.AsyncClient, node: NodeContext) -> None:
    for number in range(12):
        answer = await upload(http, big_instance(number, 2 * 1024 * 1024))
    async with http.stream("GET", f"/series/{answer['ParentSeries']}/archive") as response:
        chunks = response.aiter_raw()
        await chunks.__anext__()
        record = await job_of_type(node, "Archive")
        assert (await http.post(f"/jobs/{record.id}/cancel")).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            async for _ in chunks:
                pass
    assert record.state is JobState.FAILURE and record.error_code == 37


# -- bad input ------------------------------------------------------------------------


async def test_bad_requests(http: httpx.AsyncClient, node: NodeContext) -> None:
    study = (await upload(http, make_dicom()))["ParentStudy"]
    unknown = "00000000-00000000-00000000-00000000-00000000"
    assert_error(await http.get(f"/studies/{unknown}/archive"), 404, 17)
    assert_error(await http.post(f"/series/{unknown}/media", json={}), 404, 17)
    assert_error(await http.post("/tools/create-media", json=[study, unknown]), 404, 17)
    assert_error(
        await http.post("/tools/create-archive", json={"Resources": [unknown], "Asynchronous": True}), 404, 17
    )
    assert_error(await http.post(f"/studies/{study}/archive", content=b""), 400, 15)
    assert_error(await http.post(f"/studies/{study}/archive", content=b"{"), 400, 15)
    assert_error(
        await http.post(f"/studies/{study}/archive", json={"Synchronous": "yes"}),
        400, 15, "Boolean value expected in field: Synchronous",
    )  # fmt: skip
    assert_error(
        await http.post(f"/studies/{study}/archive", json={"Priority": "high"}),
        400, 15, "Integer value expected in field: Priority",
    )  # fmt: skip
    assert_error(
        await http.post(f"/studies/{study}/media", json={"Extended": 1}),
        400, 15, "Boolean value expected in field: Extended",
    )  # fmt: skip
    assert_error(
        await http.post(f"/studies/{study}/archive", json={"Transcode": "1.2.3"}),
        400, 3, "Unknown transfer syntax: 1.2.3",
    )  # fmt: skip
    assert_error(await http.get(f"/studies/{study}/archive?transcode=1.2.3"), 400, 3)
    create = "/tools/create-archive"
    assert_error(
        await http.post(create, content=b""), 400, 15, "Expected a list of resources to archive in the body"
    )
    assert_error(await http.post(create, json={}), 400, 15, "Missing field Resources in the JSON body")
    for body in ([1], "x", {"Resources": "x"}):
        assert_error(
            await http.post(create, json=body), 400, 15, "Expected a list of strings (Orthanc identifiers)"
        )
    assert (await http.get("/jobs")).json() == []  # nothing was submitted
    # A body that is not an object keeps the defaults on the resource routes, as in Orthanc.
    assert (await http.post(f"/studies/{study}/archive", json=[])).headers["content-type"] == ZIP


@pytest.mark.parametrize("zip64", [False, True])
def test_zip_writer_formats_read_back(zip64: bool, tmp_path: Path) -> None:
    """Classic ZIP, and the ZIP64 records Orthanc uses from 2 GiB on, read by zipfile and unzip."""
    writer = ZipWriter(zip64=zip64, comment=b"Created by Orthanc")
    contents = {f"a b/{n}.dcm": os.urandom(1000) + bytes(5000 * n) for n in range(3)}
    parts: list[bytes] = []
    for name, data in contents.items():
        member = writer.member(name, deflate(data))
        parts += member.chunks
        writer.append(member)
    end = writer.end()
    writer.close(end)
    data = b"".join([*parts, end])
    assert len(data) == writer.offset
    archive = open_zip(data)
    assert {name: archive.read(name) for name in archive.namelist()} == contents
    assert all((info.extract_version == 45) == zip64 for info in archive.infolist())
    unzip = shutil.which("unzip")
    if unzip is not None:
        (tmp_path / "a.zip").write_bytes(data)
        assert subprocess.run([unzip, "-tq", str(tmp_path / "a.zip")], capture_output=True, check=False).returncode == 0
