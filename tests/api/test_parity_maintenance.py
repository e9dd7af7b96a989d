"""Maintenance routes and file details as Orthanc 1.10.1 has them (each checked against it):
reconstruct, reset, shutdown, the PixelDataOffset metadata, and SynchronousZipStream."""

from __future__ import annotations

import io
import zipfile
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from node.config import Config
from node.context import NodeContext
from node.dicom.ids import Level
from node.supervisor import serve
from tests.support.datasets import make_dataset, make_dicom, to_bytes
from tests.support.node import client_of, node_config
from tests.support.rest import assert_error, get_json, upload

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


async def test_reconstruct_a_modified_instance(http: httpx.AsyncClient, node: NodeContext) -> None:
    original = await upload(http, make_dicom(patient_name="BEFORE"))
    modified = await http.post(f"/instances/{original['ID']}/modify", json={"Replace": {"PatientName": "AFTER"}})
    instance = (await upload(http, modified.content))["ID"]
    before = await get_json(http, f"/instances/{instance}")
    # Main tags that no longer say what the file does come back from the file.
    await node.index.set_main_tags(instance, {level: {} for level in Level}, {level: {} for level in Level})
    assert (await get_json(http, f"/instances/{instance}"))["MainDicomTags"] == {}
    for path in (f"/instances/{instance}/reconstruct", "/tools/reconstruct"):
        answer = await http.post(path)
        assert answer.status_code == 200 and answer.content == b"", path
    assert await get_json(http, f"/instances/{instance}") == before
    patient = await get_json(http, f"/instances/{instance}/patient")
    assert patient["MainDicomTags"]["PatientName"] == "AFTER"
    assert [found["Type"] for found in (await http.post("/tools/lookup", content="PAT1")).json()] == ["Patient"]
    assert_error(await http.post("/studies/nope/reconstruct"), 404, 17)


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian])
async def test_pixel_data_offset_is_where_the_element_starts(http: httpx.AsyncClient, syntax: str | None) -> None:
    ds = make_dataset(pixels=bytes(64))
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    data = to_bytes(ds)
    instance = (await upload(http, data))["ID"]
    offset = int((await http.get(f"/instances/{instance}/metadata/PixelDataOffset")).text)
    assert data[offset : offset + 4] == PIXEL_DATA_TAG and offset == data.rfind(PIXEL_DATA_TAG)


async def test_reset_starts_again_with_the_configuration_read_anew(nursery: trio.Nursery, tmp_path: Path) -> None:
    renamed = node_config(tmp_path).with_values(Name="after-reset")
    restarted_node: list[NodeContext] = []
    restarted = trio.Event()

    def on_restart(context: NodeContext) -> None:
        restarted_node.append(context)
        restarted.set()

    first: NodeContext = await nursery.start(
        partial(serve, node_config(tmp_path), reload=lambda: renamed, restarted=on_restart)
    )
    async with client_of(first) as http:
        stored = await upload(http, make_dicom())
        answer = await http.post("/tools/reset")
        assert answer.status_code == 200 and answer.json() == {}
    await restarted.wait()
    assert restarted_node[0].ports == first.ports
    async with client_of(restarted_node[0]) as http:
        assert (await get_json(http, "/system"))["Name"] == "after-reset"
        assert await get_json(http, "/instances") == [stored["ID"]]


async def test_shutdown_stops_the_node(nursery: trio.Nursery, tmp_path: Path) -> None:
    stopped = trio.Event()

    async def run(config: Config, task_status: trio.TaskStatus[NodeContext]) -> None:
        await serve(config, task_status=task_status)
        stopped.set()

    context: NodeContext = await nursery.start(run, node_config(tmp_path))
    async with client_of(context) as http:
        answer = await http.post("/tools/shutdown")
        assert answer.status_code == 200 and answer.json() == {}
    await stopped.wait()


async def _series_with_a_broken_file(http: httpx.AsyncClient, node: NodeContext) -> str:
    """A series of two instances whose second file no longer holds DICOM: a media archive fails there."""
    study, series = generate_uid(), generate_uid()
    ids = [
        (await upload(http, make_dicom(study_uid=study, series_uid=series, instance_number=n)))["ID"] for n in (1, 2)
    ]
    attachment = await node.index.dicom_attachment(ids[1])
    assert attachment is not None
    node.files.path_of(attachment.uuid).write_bytes(b"not DICOM any more")
    return str((await get_json(http, f"/instances/{ids[0]}"))["ParentSeries"])


@pytest.mark.parametrize("config_overrides", [{"SynchronousZipStream": False}])
async def test_archive_built_whole_before_it_is_sent(http: httpx.AsyncClient, node: NodeContext) -> None:
    stored = await upload(http, make_dicom())
    answer = await http.get(f"/series/{stored['ParentSeries']}/archive", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert int(answer.headers["content-length"]) == len(answer.content)
    assert answer.headers["content-disposition"] == f'filename="{stored["ParentSeries"]}.zip"'
    assert len(zipfile.ZipFile(io.BytesIO(answer.content)).namelist()) == 1
    # A failure half-way is an error answer, not a cut stream; no temporary file is left.
    series = await _series_with_a_broken_file(http, node)
    failed = await http.get(f"/series/{series}/media")
    assert failed.status_code == 400 and failed.json()["OrthancStatus"] == 15
    folder = Path(node.settings.storage.temporary_directory or "")
    assert not [p for p in folder.rglob("*.zip")]


async def test_streamed_archive_by_default(http: httpx.AsyncClient, node: NodeContext) -> None:
    series = await _series_with_a_broken_file(http, node)
    with pytest.raises(httpx.RemoteProtocolError):  # headers sent, then the stream is cut
        await http.get(f"/series/{series}/media")
