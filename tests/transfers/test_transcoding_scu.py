"""Transcoding where Orthanc does it: archives, modify jobs, ingest, and the C-STORE SCU falling
back to a syntax the remote accepts (DCMTK's storescp started with a narrow choice of syntaxes)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
)

from node.context import NodeContext
from tests.support.datasets import to_bytes
from tests.support.images import image_dataset
from tests.support.rest import upload
from tests.support.storescp import running_storescp

SIDE = 32


def _pixels(number: int) -> np.ndarray:
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    return (x * 30 + y * 7 + number * 101 - 500).astype(np.int16)


def _read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


async def _study(http: httpx.AsyncClient, syntax: str = ExplicitVRLittleEndian, count: int = 3) -> list[dict[str, str]]:
    """``count`` CT slices of one series, stored in ``syntax`` (compressed by pydicom)."""
    series = pydicom.uid.generate_uid()
    stored = []
    for number in range(count):
        ds = image_dataset(_pixels(number), series_uid=series, instance_number=number + 1)
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax, generate_instance_uid=False)
        stored.append(await upload(http, to_bytes(ds)))
    return stored


def _check_slices(files: list[bytes], syntax: str) -> None:
    """Every file in ``syntax``, each with the pixels of its slice."""
    assert files
    for ds in map(_read, files):
        assert ds.file_meta.TransferSyntaxUID == syntax
        assert np.array_equal(ds.pixel_array, _pixels(int(ds.InstanceNumber) - 1))


def _zip_members(content: bytes) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return [archive.read(name) for name in archive.namelist() if not name.endswith("DICOMDIR")]


async def test_a_study_archive_and_media_transcoded(http: httpx.AsyncClient) -> None:
    stored = await _study(http)
    study = stored[0]["ParentStudy"]
    answer = await http.get(f"/studies/{study}/archive", params={"transcode": JPEGLSLossless})
    _check_slices(_zip_members(answer.content), JPEGLSLossless)
    answer = await http.post(f"/studies/{study}/media", json={"Transcode": JPEG2000Lossless})
    _check_slices(_zip_members(answer.content), JPEG2000Lossless)
    # 16-bit slices have no JPEG baseline: the files go in their own syntax, as with Orthanc.
    answer = await http.post("/tools/create-archive", json={"Resources": [study], "Transcode": JPEGBaseline8Bit})
    _check_slices(_zip_members(answer.content), ExplicitVRLittleEndian)


async def test_a_modify_job_transcodes_and_an_instance_route_answers_transcoded(http: httpx.AsyncClient) -> None:
    stored = await _study(http, JPEG2000Lossless)
    body = {"Replace": {"StudyDescription": "transcoded"}, "Transcode": ExplicitVRLittleEndian}
    content = (await http.post(f"/studies/{stored[0]['ParentStudy']}/modify", json=body)).json()
    assert content["Transcode"] == ExplicitVRLittleEndian
    instances = (await http.get(f"/studies/{content['ID']}/instances")).json()
    files = [(await http.get(f"/instances/{item['ID']}/file")).content for item in instances]
    _check_slices(files, ExplicitVRLittleEndian)
    assert {_read(f).StudyDescription for f in files} == {"transcoded"}
    answer = await http.post(f"/instances/{stored[0]['ID']}/modify", json={"Transcode": JPEGLSLossless})
    _check_slices([answer.content], JPEGLSLossless)
    refused = await http.post(f"/instances/{stored[0]['ID']}/modify", json={"Transcode": JPEGBaseline8Bit})
    assert (refused.status_code, refused.json()["OrthancStatus"]) == (500, -1)
    assert refused.json()["Details"] == f"Cannot transcode to transfer syntax: {JPEGBaseline8Bit}"


async def test_a_lossy_modify_job_gives_new_instances(http: httpx.AsyncClient) -> None:
    pixels = (np.mgrid[0:SIDE, 0:SIDE][1] * 8).astype(np.uint8)
    source = await upload(http, to_bytes(image_dataset(pixels)))
    body = {"Transcode": JPEGBaseline8Bit, "KeepSource": False}
    content = (await http.post(f"/series/{source['ParentSeries']}/anonymize", json=body)).json()
    [instance] = (await http.get(f"/series/{content['ID']}/instances")).json()
    ds = _read((await http.get(f"/instances/{instance['ID']}/file")).content)
    assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit and ds.LossyImageCompression == "01"
    assert ds.SourceImageSequence[0].ReferencedSOPInstanceUID != ds.SOPInstanceUID


@pytest.mark.parametrize("config_overrides", [{"IngestTranscoding": JPEGLSLossless}])
async def test_ingest_transcoding(http: httpx.AsyncClient) -> None:
    [stored] = await _study(http, count=1)
    assert (await http.get(f"/instances/{stored['ID']}/metadata/TransferSyntax")).text == JPEGLSLossless
    _check_slices([(await http.get(f"/instances/{stored['ID']}/file")).content], JPEGLSLossless)


async def _store_to(
    node: NodeContext, http: httpx.AsyncClient, folder: Path, options: list[str], study: str, **modality: object
) -> dict[str, object]:
    async with running_storescp(folder, options=options) as port:
        await node.remotes.modalities.put("scp", {"AET": "STORESCP", "Host": "127.0.0.1", "Port": port, **modality})
        answer = await http.post("/modalities/scp/store", json={"Resources": [study]})
    result: dict[str, object] = answer.json()
    return result


async def test_a_jpeg_2000_study_reaches_a_modality_that_takes_only_uncompressed(
    node: NodeContext, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored = await _study(http, JPEG2000Lossless)
    received = tmp_path / "explicit"
    content = await _store_to(node, http, received, ["+xe"], stored[0]["ParentStudy"])
    assert content["FailedInstancesCount"] == 0
    _check_slices([path.read_bytes() for path in received.iterdir()], ExplicitVRLittleEndian)
    received = tmp_path / "implicit"  # storescp +xi: Implicit VR Little Endian only
    content = await _store_to(node, http, received, ["+xi"], stored[0]["ParentStudy"])
    assert content["FailedInstancesCount"] == 0
    _check_slices([path.read_bytes() for path in received.iterdir()], ImplicitVRLittleEndian)


@pytest.mark.parametrize("config_overrides", [{"DicomScuPreferredTransferSyntax": JPEGLSLossless}])
async def test_the_preferred_syntax_comes_first(node: NodeContext, http: httpx.AsyncClient, tmp_path: Path) -> None:
    stored = await _study(http, JPEG2000Lossless, count=2)
    received = tmp_path / "received"
    content = await _store_to(node, http, received, ["+xt"], stored[0]["ParentStudy"])  # JPEG-LS or uncompressed
    assert content["FailedInstancesCount"] == 0
    _check_slices([path.read_bytes() for path in received.iterdir()], JPEGLSLossless)


async def test_no_transcoding_when_the_modality_forbids_it(
    node: NodeContext, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored = await _study(http, JPEG2000Lossless, count=1)
    async with running_storescp(tmp_path / "received", options=["+xi"]) as port:
        modality = {"AET": "STORESCP", "Host": "127.0.0.1", "Port": port, "AllowTranscoding": False}
        await node.remotes.modalities.put("scp", modality)
        answer = await http.post("/modalities/scp/store", json={"Resources": [stored[0]["ID"]]})
    assert answer.status_code == 500  # only the stored syntax was proposed: the remote took nothing
    assert "accepted none of the proposed presentation contexts" in answer.json()["Details"]
    assert not list((tmp_path / "received").iterdir())
