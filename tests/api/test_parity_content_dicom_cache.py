"""The cache of parsed DICOM files and its two metrics, as Orthanc 1.10.1 publishes them.

Orthanc shows orthanc_dicom_cache_count and orthanc_dicom_cache_size (MiB, the size of
the files held) from the start, at 0; an instance read enters the cache once, whatever
the number of reads; deleting it takes it out. The cache is bounded by size.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from node.metrics import Metrics
from node.services.dicom_cache import DicomCache
from tests.support.datasets import make_dicom
from tests.support.rest import post, upload

MIB = 1024 * 1024


async def cache_metrics(http: httpx.AsyncClient) -> tuple[float, float]:
    answer = await http.get("/tools/metrics-prometheus")
    values = {s.name: s.value for f in text_string_to_metric_families(answer.text) for s in f.samples}
    return values["orthanc_dicom_cache_count"], values["orthanc_dicom_cache_size"]


async def test_reads_fill_the_cache_once_and_deletion_empties_it(http: httpx.AsyncClient) -> None:
    assert await cache_metrics(http) == (0, 0)
    data = [make_dicom(patient_id="P1"), make_dicom(patient_id="P2")]
    instances = [(await upload(http, d))["ID"] for d in data]
    for instance in instances:
        for path in ("tags", "simplified-tags", "content", "content/0010-0020", "header"):
            assert (await http.get(f"/instances/{instance}/{path}")).status_code == 200
    count, size = await cache_metrics(http)
    assert (count, size * MIB) == (2, pytest.approx(sum(len(d) for d in data)))
    await http.delete(f"/instances/{instances[0]}")
    count, size = await cache_metrics(http)
    assert (count, size * MIB) == (1, pytest.approx(len(data[1])))
    assert (await http.get(f"/instances/{instances[0]}/tags")).status_code == 404


@pytest.mark.parametrize("config_overrides", [{"OverwriteInstances": True}])
async def test_an_overwritten_instance_is_read_anew(http: httpx.AsyncClient, config_overrides: dict[str, Any]) -> None:
    uids = {"study_uid": "1.2.3", "series_uid": "1.2.3.1", "sop_uid": "1.2.3.1.1"}
    first = make_dicom(patient_id="P1", patient_name="BEFORE", **uids)
    instance = (await upload(http, first))["ID"]
    assert (await http.get(f"/instances/{instance}/simplified-tags")).json()["PatientName"] == "BEFORE"
    second = make_dicom(patient_id="P1", patient_name="AFTER", **uids)
    assert (await upload(http, second))["ID"] == instance
    assert (await http.get(f"/instances/{instance}/simplified-tags")).json()["PatientName"] == "AFTER"


@pytest.mark.parametrize("config_overrides", [{"OverwriteInstances": True}])
async def test_tags_answered_again_after_an_overwrite_or_a_delete(
    http: httpx.AsyncClient, config_overrides: dict[str, Any]
) -> None:
    """The plain /tags answer is kept per stored file: a new file, or none, is never answered from it."""
    uids = {"study_uid": "1.2.4", "series_uid": "1.2.4.1", "sop_uid": "1.2.4.1.1"}
    instance = (await upload(http, make_dicom(patient_id="P1", patient_name="BEFORE", **uids)))["ID"]
    for _ in range(2):  # the second answer comes from the kept one
        assert (await http.get(f"/instances/{instance}/tags")).json()["0010,0010"]["Value"] == "BEFORE"
    await upload(http, make_dicom(patient_id="P1", patient_name="AFTER", **uids))
    assert (await http.get(f"/instances/{instance}/tags")).json()["0010,0010"]["Value"] == "AFTER"
    await http.delete(f"/instances/{instance}")
    assert (await http.get(f"/instances/{instance}/tags")).status_code == 404


async def test_the_cache_is_bounded_by_size() -> None:
    data = {name: make_dicom(patient_id=name) for name in ("A", "B", "C")}
    cache = DicomCache(Metrics(), max_bytes=2 * max(len(d) for d in data.values()))
    reads = []

    def loader(name: str) -> Any:
        async def load() -> bytes:
            reads.append(name)
            await trio.lowlevel.checkpoint()
            return data[name]

        return load

    def patient_id(dataset: Any) -> str:
        return str(dataset.PatientID)

    for name in ("A", "B", "A", "C", "A", "B"):  # C pushes out B, the least recently used
        assert await cache.read(name, f"file-{name}", loader(name), patient_id) == name
    assert reads == ["A", "B", "C", "B"]
    assert cache.count == 2 and cache.size == len(data["A"]) + len(data["B"])
    await cache.read("A", "another-file", loader("A"), patient_id)  # the instance was overwritten
    assert reads[-1] == "A"
    cache.forget_files(["file-B"])
    assert cache.count == 1


async def test_a_modified_instance_answers_from_its_own_file(http: httpx.AsyncClient) -> None:
    instance = (await upload(http, make_dicom(patient_name="ORIGINAL")))["ID"]
    assert (await http.get(f"/instances/{instance}/simplified-tags")).json()["PatientName"] == "ORIGINAL"
    body = {"Replace": {"PatientName": "CHANGED"}, "Force": True}
    modified = await post(http, f"/instances/{instance}/modify", body)
    assert modified.status_code == 200
    assert (await http.get(f"/instances/{instance}/simplified-tags")).json()["PatientName"] == "ORIGINAL"
