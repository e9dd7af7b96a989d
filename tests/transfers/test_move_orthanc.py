"""C-MOVE SCU against real Orthanc 1.10.1: a study moves from Orthanc into our node (Orthanc knows
our node as a modality), the job reads as Orthanc's own retrieve, the route bodies and their
errors are Orthanc's, and a move to an AE title the remote does not know fails saying so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from node.context import NodeContext
from node.dicom.ids import study_id
from tests.support.orthanc import RunningOrthanc, needs_orthanc
from tests.support.qr_corpus import STUDY_BRAIN, STUDY_CHEST, uid
from tests.support.query_retrieve import LOOPBACK, declare_in_orthanc, orthanc_archive, study_instances
from tests.support.rest import assert_error

pytestmark = needs_orthanc

AET, OUR_AET = "ORTHANC", "NODE"
CHEST = study_id("PAT1", STUDY_CHEST)
BRAIN = study_id("PAT1", STUDY_BRAIN)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    with orthanc_archive(tmp_path_factory.mktemp("orthanc"), AET, DicomAlwaysAllowFind=True) as running:
        yield running


@pytest.fixture
def config_overrides(orthanc: RunningOrthanc) -> dict[str, Any]:
    return {"DicomAet": OUR_AET, "DicomModalities": {"orthanc": [AET, LOOPBACK, orthanc.dicom_port]}}


@pytest.fixture
async def theirs(orthanc: RunningOrthanc, node: NodeContext) -> AsyncIterator[httpx.AsyncClient]:
    """Orthanc's REST API, once Orthanc knows where our node listens."""
    declare_in_orthanc(orthanc, "node", OUR_AET, node.ports["dicom"])
    async with httpx.AsyncClient(base_url=orthanc.http_url, timeout=30) as client:
        yield client


async def _study_query(client: httpx.AsyncClient, modality: str, study_uid: str) -> str:
    body = {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
    answer = await client.post(f"/modalities/{modality}/query", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


async def test_a_study_moves_from_orthanc_into_our_node(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    ours = await http.post(f"/queries/{await _study_query(http, 'orthanc', STUDY_CHEST)}/retrieve", content="")
    assert ours.status_code == 200, ours.text
    # Orthanc's own retrieve of the same answer (to itself) says the same, but for who asked.
    expected = await theirs.post(f"/queries/{await _study_query(theirs, 'self', STUDY_CHEST)}/retrieve", content="")
    assert ours.json() == {**expected.json(), "LocalAet": OUR_AET}
    assert await study_instances(http, CHEST) == await study_instances(theirs, CHEST) != []
    jobs = (await http.get("/jobs?expand")).json()
    assert [(job["Type"], job["State"], job["Progress"]) for job in jobs] == [("DicomMoveScu", "Success", 100)]


async def test_target_as_text_or_field_and_asynchronous(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    query = await _study_query(http, "orthanc", STUDY_BRAIN)
    assert (await http.post(f"/queries/{query}/answers/0/retrieve", content=OUR_AET)).status_code == 200
    assert await study_instances(http, BRAIN) == await study_instances(theirs, BRAIN) != []
    queued = await http.post(f"/queries/{query}/retrieve", json={"TargetAet": OUR_AET, "Asynchronous": True})
    job = queued.json()
    assert set(job) == {"ID", "Path"} and job["Path"] == f"/jobs/{job['ID']}"
    assert node.jobs.get(job["ID"]) is not None
    finished = await node.jobs.wait_completed(node.jobs.get(job["ID"]))  # type: ignore[arg-type]
    assert finished is not None and finished.state.value == "Success"
    simplified = await http.post(f"/queries/{query}/retrieve", json={"Simplify": True})
    assert simplified.json()["Query"] == [
        {"AccessionNumber": "acc2", "PatientID": "PAT1", "QueryRetrieveLevel": "STUDY", "StudyInstanceUID": STUDY_BRAIN}
    ]


MOVE_BODIES: list[Any] = [
    {"Level": "Study"},
    {"Resources": []},
    [],
    {"Level": "Foo", "Resources": []},
    {"Level": "Study", "Resources": ["x"]},
    {"Level": "Study", "Resources": [{"StudyInstanceUID": 3}]},
    {"Level": "Series", "Resources": [{"StudyInstanceUID": STUDY_CHEST}]},  # no SeriesInstanceUID: error 8
    {"Level": "Study", "Resources": [], "LocalAet": 3},
    {"Level": "Study", "Resources": [], "Timeout": "x"},
]


async def test_move_route_bodies(node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient) -> None:
    for body in MOVE_BODIES:
        ours, expected = (
            await http.post("/modalities/orthanc/move", json=body),
            await theirs.post("/modalities/self/move", json=body),
        )
        assert (ours.status_code, ours.json()["OrthancStatus"]) == (
            expected.status_code,
            expected.json()["OrthancStatus"],
        ), body
        assert ours.json().get("Details") == expected.json().get("Details") or "Details" not in expected.json(), body
    series = {"StudyInstanceUID": STUDY_CHEST, "SeriesInstanceUID": uid(1, 1), "PatientName": "left out"}
    moved = await http.post("/modalities/orthanc/move", json={"Level": "Series", "Resources": [series]})
    assert moved.status_code == 200, moved.text
    assert moved.json() == {
        "Description": "REST API",
        "LocalAet": OUR_AET,
        "Query": [{"0008,0052": "SERIES", "0020,000d": STUDY_CHEST, "0020,000e": uid(1, 1)}],
        "RemoteAet": AET,
    }
    assert await study_instances(http, CHEST) != []
    empty = await http.post("/modalities/orthanc/move", json={"Level": "Study", "Resources": []})
    assert empty.json()["Query"] == []
    assert_error(await http.post("/modalities/nosuch/move", json={"Level": "Study", "Resources": []}), 404, 7)


async def test_a_move_to_an_unknown_target_fails_saying_why(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    query = await _study_query(http, "orthanc", STUDY_CHEST)
    body = assert_error(await http.post(f"/queries/{query}/retrieve", content="NOSUCH"), 500, 9)
    assert body["Details"] == (
        f'C-MOVE SCU to AET "{AET}" has failed with DIMSE status 0xC000 '
        '(unable to process - resource not found ?), moving to AET "NOSUCH"'
    )
    expected = (
        await theirs.post(f"/queries/{await _study_query(theirs, 'self', STUDY_CHEST)}/retrieve", content="NOSUCH")
    ).json()
    assert (expected["HttpStatus"], expected["OrthancStatus"]) == (500, 9)
    assert body["Details"].startswith(expected["Details"])
    assert await study_instances(http, CHEST) == []
    failed = (await http.get("/jobs?expand")).json()
    assert [(job["State"], job["ErrorCode"], job["ErrorDetails"]) for job in failed] == [
        ("Failure", 9, body["Details"])
    ]
