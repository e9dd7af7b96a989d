"""The log of changes and the resource lists as Orthanc 1.10.1 keeps and pages them (each
checked against it): deletions take their changes along, paging arguments, instances replaced
under OverwriteInstances, and the completeness of series."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid

from tests.support.datasets import make_dataset, make_dicom, to_bytes
from tests.support.rest import assert_error, get_json, upload


async def _changes(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    answer = await http.get("/changes", params=params)
    assert answer.status_code == 200
    return answer.json()


async def test_deleted_resources_leave_the_log(http: httpx.AsyncClient) -> None:
    kept = await upload(http, make_dicom(patient_id="KEPT"))
    gone = await upload(http, make_dicom(patient_id="GONE"))
    last = (await _changes(http))["Last"]
    await http.delete(f"/patients/{gone['ParentPatient']}")
    listed = await _changes(http)
    assert {c["ID"] for c in listed["Changes"]} == {
        kept[key] for key in ("ID", "ParentSeries", "ParentStudy", "ParentPatient")
    }
    await http.delete(f"/patients/{kept['ParentPatient']}")
    # Emptied: no change left, but "Last" still says how far numbering went.
    assert await _changes(http) == {"Changes": [], "Done": True, "Last": last}
    assert await _changes(http, last="") == {"Changes": [], "Done": True, "Last": last}


async def test_changes_arguments_as_orthanc(http: httpx.AsyncClient) -> None:
    await upload(http, make_dicom())
    everything = await _changes(http)
    assert len(everything["Changes"]) == 4
    assert (await _changes(http, since="x", limit="y"))["Changes"] == everything["Changes"]  # defaults
    assert (await _changes(http, since=-3, limit=2))["Changes"] == everything["Changes"][:2]
    assert await _changes(http, limit=-1) == {"Changes": [], "Done": True, "Last": everything["Last"]}
    assert await _changes(http, limit=0) == {"Changes": [], "Done": False, "Last": everything["Last"]}


async def test_resource_list_paging(http: httpx.AsyncClient) -> None:
    ids = [(await upload(http, make_dicom(patient_id=f"P{i}")))["ID"] for i in range(3)]
    assert await get_json(http, "/instances?since=0&limit=0") == []
    assert await get_json(http, "/instances?since=1&limit=-1") == ids[1:]
    assert await get_json(http, "/instances?since=-1&limit=2") == ids[:2]
    for bad in ("since=x&limit=2", "since=1&limit=1.5", "since=99999999999&limit=2"):
        assert_error(await http.get(f"/instances?{bad}"), 400, 5, "Syntax error in some user-supplied data")


@pytest.mark.parametrize("config_overrides", [{"OverwriteInstances": True}])
async def test_overwrite_replaces_as_delete_then_store(http: httpx.AsyncClient) -> None:
    data = make_dicom()
    first = await upload(http, data)
    before = await _changes(http)
    again = await upload(http, data)
    assert again["Status"] == "Success" and again["ID"] == first["ID"]
    # The lone instance took its series, study and patient along; they come back as new.
    kinds = [c["ChangeType"] for c in (await _changes(http))["Changes"]]
    assert kinds == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
    assert (await _changes(http))["Last"] == before["Last"] + 4


async def _series_states(http: httpx.AsyncClient, plan: list[tuple[int | None, dict[str, Any]]]) -> list[Any]:
    study, series = generate_uid(), generate_uid()
    states = []
    for number, tags in plan:
        stored = await upload(
            http, to_bytes(make_dataset(study_uid=study, series_uid=series, instance_number=number, **tags))
        )
        answer = await get_json(http, f"/series/{stored['ParentSeries']}")
        completed = [
            c for c in (await _changes(http, limit=1000))["Changes"]
            if c["ChangeType"] == "CompletedSeries" and c["ID"] == stored["ParentSeries"]
        ]  # fmt: skip
        states.append((answer["Status"], answer["ExpectedNumberOfInstances"], len(completed)))
    return states


async def test_series_completeness_as_orthanc_computes_it(http: httpx.AsyncClient) -> None:
    two = {"CardiacNumberOfImages": 2}
    # An instance without an index is left out; one index twice makes the series inconsistent.
    assert await _series_states(http, [(1, two), (None, two), (2, two), (2, two)]) == [
        ("Missing", 2, 0), ("Missing", 2, 0), ("Complete", 2, 1), ("Inconsistent", 2, 1),
    ]  # fmt: skip
    # The series keeps what its first instance said; an instance is complete by its own count.
    assert await _series_states(http, [(1, {"CardiacNumberOfImages": 3}), (2, two), (3, {})]) == [
        ("Missing", 3, 0), ("Missing", 3, 1), ("Complete", 3, 1),
    ]  # fmt: skip
    # A count of zero says nothing.
    zero = {"ImagesInAcquisition": 0, "NumberOfTemporalPositions": 1}
    assert await _series_states(http, [(1, zero)]) == [("Unknown", None, 0)]
