"""Differential test: an instance transcoded by real Orthanc 1.10.1 and by our node, in a series
archive (which keeps the identifiers), has the same tags: for a lossless target (JPEG-LS) and for
a lossy one (JPEG baseline, with its lossy-compression marks).

Not compared: the file meta's implementation identifiers, the pixel data (other encoders; the
pixels are compared instead), and for the lossy target the new SOP Instance UID (DCMTK draws
it, we derive it) and the compression ratio, which only has to be close.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
import trio
from pydicom.uid import JPEGBaseline8Bit, JPEGLSLossless

from tests.support.datasets import to_bytes
from tests.support.images import image_dataset, psnr
from tests.support.node import client_of, node_config, start_node
from tests.support.orthanc import needs_orthanc, running_orthanc

pytestmark = needs_orthanc

CLIENT_TIMEOUT = 30.0
RATIO_TOLERANCE = 0.1  # relative: two builds of the IJG library round differently
SAME_JPEG_PSNR = 40.0  # dB between Orthanc's and our JPEG baseline decodes
_NOT_COMPARED = {"PixelData", "ImplementationClassUID", "ImplementationVersionName", "FileMetaInformationGroupLength"}
_LOSSY_ONLY = {"SOPInstanceUID", "MediaStorageSOPInstanceUID", "LossyImageCompressionRatio", "DerivationDescription"}


def _image() -> bytes:
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:48, 0:64]
    planes = [x * 3.0 + y, 200 - x * 2.0, (x + y) * 1.5]
    rgb = np.stack([np.clip(p + rng.normal(0, 2, p.shape), 0, 255) for p in planes], axis=-1).astype(np.uint8)
    return to_bytes(image_dataset(rgb, ImageType=["ORIGINAL", "PRIMARY", "AXIAL"], series_uid="1.2.826.0.1.77.5"))


def _tags(ds: pydicom.Dataset, lossy: bool) -> dict[str, object]:
    skipped = _NOT_COMPARED | (_LOSSY_ONLY if lossy else set())
    elements = [*ds.file_meta, *ds]
    return {e.keyword or str(e.tag): str(e.value) for e in elements if e.keyword not in skipped}


async def _transcoded(http: httpx.AsyncClient, series: str, syntax: str) -> pydicom.Dataset:
    answer = await http.get(f"/series/{series}/archive", params={"transcode": syntax})
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        [name] = archive.namelist()
        return pydicom.dcmread(io.BytesIO(archive.read(name)))


async def test_transcoded_tags_match_orthanc(nursery: trio.Nursery, tmp_path: Path) -> None:
    data = _image()
    ours = await start_node(nursery, node_config(tmp_path / "ours"))
    with running_orthanc(tmp_path / "orthanc", aet="ORTHANC") as orthanc:
        async with (
            client_of(ours) as mine,
            httpx.AsyncClient(base_url=orthanc.http_url, timeout=CLIENT_TIMEOUT) as theirs,
        ):
            series = {}
            for name, http in (("ours", mine), ("orthanc", theirs)):
                series[name] = (await http.post("/instances", content=data)).json()["ParentSeries"]
            assert series["ours"] == series["orthanc"]
            for syntax, lossy in ((JPEGLSLossless, False), (JPEGBaseline8Bit, True)):
                mine_ds = await _transcoded(mine, series["ours"], syntax)
                their_ds = await _transcoded(theirs, series["orthanc"], syntax)
                assert _tags(mine_ds, lossy) == _tags(their_ds, lossy), syntax
                if not lossy:
                    assert np.array_equal(mine_ds.pixel_array, their_ds.pixel_array)
                    continue
                assert psnr(their_ds.pixel_array, mine_ds.pixel_array, 255) > SAME_JPEG_PSNR
                mine_ratio, their_ratio = (
                    float(mine_ds.LossyImageCompressionRatio),
                    float(their_ds.LossyImageCompressionRatio),
                )
                assert abs(mine_ratio - their_ratio) <= RATIO_TOLERANCE * their_ratio
                prefix = "Lossy compression with JPEG baseline, IJG quality factor 90, compression ratio "
                assert mine_ds.DerivationDescription.startswith(prefix)
                assert their_ds.DerivationDescription.startswith(prefix)
                assert mine_ds.SOPInstanceUID != pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
