"""The Prometheus endpoint parses cleanly and its figures track reality."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.datasets import make_dicom


async def _scrape(http: httpx.AsyncClient) -> dict[str, float]:
    answer = await http.get("/tools/metrics-prometheus")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if not sample.labels:
                values[sample.name] = sample.value
    return values


async def test_counts_follow_store_and_delete(http: httpx.AsyncClient) -> None:
    before = await _scrape(http)
    assert before["orthanc_count_instances"] == 0
    data = make_dicom()
    stored = (await http.post("/instances", content=data)).json()
    after = await _scrape(http)
    assert after["orthanc_count_instances"] == 1
    assert after["orthanc_count_patients"] == 1
    assert abs(after["orthanc_disk_size_mb"] - len(data) / 1048576) < 1e-9
    assert after["orthanc_last_change"] == 4
    assert after["orthanc_rest_api_active_requests"] >= 1
    assert "orthanc_rest_api_duration_ms" in after
    assert "orthanc_storage_create_duration_ms" in after
    assert "orthanc_store_dicom_duration_ms" in after
    assert "orthanc_storage_read_duration_ms" not in after
    await http.get(f"/instances/{stored['ID']}/file")
    assert "orthanc_storage_read_duration_ms" in await _scrape(http)
    await http.delete(f"/patients/{stored['ParentPatient']}")
    final = await _scrape(http)
    assert final["orthanc_count_instances"] == 0
    assert "orthanc_storage_remove_duration_ms" in final


async def test_orthanc_lines_carry_update_timestamps(http: httpx.AsyncClient) -> None:
    text = (await http.get("/tools/metrics-prometheus")).text
    line = next(x for x in text.splitlines() if x.startswith("orthanc_count_patients "))
    _, value, timestamp = line.split(" ")
    assert value == "0" and len(timestamp) == 13


async def test_request_histogram(http: httpx.AsyncClient) -> None:
    await http.get("/system")
    text = (await http.get("/tools/metrics-prometheus")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families["trionode_rest_api_request_duration_seconds"]
    counts = [s.value for s in histogram.samples if s.name.endswith("_count") and s.labels["method"] == "GET"]
    assert counts and counts[0] >= 1


async def test_disable_empties_output(http: httpx.AsyncClient) -> None:
    assert (await http.get("/tools/metrics")).text == "1"
    assert (await http.put("/tools/metrics", content=b" 0 ")).status_code == 200
    assert (await http.get("/tools/metrics")).text == "0"
    assert (await http.get("/tools/metrics-prometheus")).text == ""
    assert (await http.put("/tools/metrics", content=b"true")).status_code == 200
    assert "orthanc_count_instances" in (await http.get("/tools/metrics-prometheus")).text


async def test_bad_switch_value(http: httpx.AsyncClient) -> None:
    answer = await http.put("/tools/metrics", content=b"maybe")
    assert answer.status_code == 400
    assert answer.json()["OrthancStatus"] == 15
    assert answer.json()["Details"] == "Boolean value expected"
    assert (await http.get("/tools/metrics")).text == "1"


async def test_jobs_counted_by_state_and_type(node, http: httpx.AsyncClient) -> None:
    stored = (await http.post("/instances", content=make_dicom())).json()
    body = {"Replace": {"StudyDescription": "changed"}}
    assert (await http.post(f"/studies/{stored['ParentStudy']}/modify", json=body)).status_code == 200
    values = await _scrape(http)
    assert values["orthanc_jobs_success"] == 1
    assert values["orthanc_jobs_completed"] == 1
    assert values["orthanc_jobs_pending"] == 0
    text = (await http.get("/tools/metrics-prometheus")).text
    finished = {
        (s.labels["type"], s.labels["state"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "trionode_jobs_finished"
        for s in f.samples
        if s.name.endswith("_total")
    }
    assert finished == {("ResourceModification", "Success"): 1}
