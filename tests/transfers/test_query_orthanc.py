"""Differential: the same query/retrieve REST calls to real Orthanc 1.10.1 and to our node, both
querying the same Orthanc (which answers C-FIND for itself as modality "self"), must give the
same answers, the same query records and the same errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bench.orthanc_process import free_port
from node.context import NodeContext
from tests.support.orthanc import RunningOrthanc, needs_orthanc, running_orthanc
from tests.support.qr_corpus import STUDY_CHEST, corpus, uid
from tests.support.query_retrieve import LOOPBACK, declare_in_orthanc, orthanc_upload

pytestmark = needs_orthanc

AET, OUR_AET = "ORTHANC", "NODE"
CLIENT_TIMEOUT = 30.0

QUERIES = [
    {"Level": "Patient", "Query": {"PatientName": "", "PatientID": "", "NumberOfPatientRelatedStudies": ""}},
    {
        "Level": "Study",
        "Query": {
            "PatientName": "DOE*",
            "StudyDate": "",
            "StudyDescription": "",
            "Modality": "",
            "ModalitiesInStudy": "",
            "SeriesDescription": "",
        },
    },
    {"Level": "series", "Query": {"StudyInstanceUID": STUDY_CHEST, "Modality": "", "InstanceNumber": ""}},
    {"Level": "Instance", "Query": {"SeriesInstanceUID": uid(1, 1), "InstanceNumber": "", "SOPClassUID": ""}},
    {"Level": "Study", "Normalize": False, "Query": {"PatientName": "*", "Modality": "", "0008,1030": ""}},
    {"Level": "IMAGE", "Query": {"0010,0010": "müller*", "StudyDate": ""}, "Normalize": True},
    {"Level": "study", "Query": {"StudyDate": "20200101-20201231", "AccessionNumber": ""}, "Timeout": 5},
]

BAD_BODIES: list[Any] = [
    {"Query": {}},
    "not json",
    [],
    {"Level": 3},
    {"Level": "Foo"},
    {"Level": "Study", "Query": []},
    {"Level": "Study", "Query": {"PatientName": 3}},
    {"Level": "Study", "Query": {"NoSuchTag": "x"}},
    {"Level": "Study", "Normalize": "yes"},
    {"Level": "Study", "Timeout": -1},
    {"Level": "Study", "Timeout": "x"},
    {"Level": "Study", "LocalAet": 3},
    {"Level": "Study", "Query": {"StudyDate": "2020*"}},  # refused by the remote: 422
]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOrthanc]:
    overrides = {"DicomAlwaysAllowFind": True}
    with running_orthanc(tmp_path_factory.mktemp("orthanc"), aet=AET, overrides=overrides) as running:
        orthanc_upload(running, corpus())
        declare_in_orthanc(running, "self", AET, running.dicom_port)
        declare_in_orthanc(running, "dead", "DEAD", DEAD_PORT)
        yield running


DEAD_PORT = free_port()  # nobody listens there


@pytest.fixture
def config_overrides(orthanc: RunningOrthanc) -> dict[str, Any]:
    return {
        "DicomAet": OUR_AET,
        "DicomModalities": {"self": [AET, LOOPBACK, orthanc.dicom_port], "dead": ["DEAD", LOOPBACK, DEAD_PORT]},
    }


@pytest.fixture
async def theirs(orthanc: RunningOrthanc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=orthanc.http_url, timeout=CLIENT_TIMEOUT) as client:
        yield client


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _content(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body)


def _answer(response: httpx.Response) -> tuple[int, Any]:
    """Status and body (JSON when there is one), the URI left out: it names the query's own ID."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, response.text
    if isinstance(body, dict):
        body.pop("Uri", None)
    return response.status_code, body


async def _query(client: httpx.AsyncClient, body: Any) -> str:
    answer = await client.post("/modalities/self/query", content=_content(body))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["ID"])


async def _record(client: httpx.AsyncClient, query_id: str) -> dict[str, Any]:
    """Everything the REST API tells about a query, its answers sorted (their order is the remote's)."""
    base = f"/queries/{query_id}"
    count = len((await client.get(f"{base}/answers")).json())
    contents = [(await client.get(f"{base}/answers/{n}/content")).json() for n in range(count)]
    return {
        "routes": (await client.get(base)).json(),
        "answer routes": [(await client.get(f"{base}/answers/{n}")).json() for n in range(count)],
        "contents": sorted(contents, key=_canonical),
        "expanded": sorted((await client.get(f"{base}/answers?expand")).json(), key=_canonical),
        "simplified": sorted((await client.get(f"{base}/answers?expand&simplify")).json(), key=_canonical),
        "short": sorted((await client.get(f"{base}/answers?expand&short")).json(), key=_canonical),
        "query": (await client.get(f"{base}/query")).json(),
        "query simplified": (await client.get(f"{base}/query?simplify")).json(),
        "level": (await client.get(f"{base}/level")).text,
        "modality": (await client.get(f"{base}/modality")).text,
    }


async def test_queries_are_recorded_as_orthanc_records_them(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    for body in QUERIES:
        ours = await _record(http, await _query(http, body))
        expected = await _record(theirs, await _query(theirs, body))
        assert ours["contents"], f"{body}: no answer at all"
        assert ours == expected, body


async def test_child_queries_carry_the_answer_identifiers(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    body = {"Level": "Patient", "Query": {"PatientID": "PAT1"}}
    for route in ("query-studies", "query-series", "query-instances"):
        records = []
        for client in (http, theirs):
            parent = await _query(client, body)
            child = await client.post(f"/queries/{parent}/answers/0/{route}", json={"Query": {"Modality": ""}})
            assert child.status_code == 200, child.text
            records.append(await _record(client, child.json()["ID"]))
        assert records[0] == records[1], route
    ours, expected = await _query(http, QUERIES[1]), await _query(theirs, QUERIES[1])
    for client, query_id in ((http, ours), (theirs, expected)):
        assert (await client.post(f"/queries/{query_id}/answers/0/query-studies", json={})).status_code == 404


async def test_errors_are_orthanc_errors(node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient) -> None:
    for body in BAD_BODIES:
        ours = _answer(await http.post("/modalities/self/query", content=_content(body)))
        expected = _answer(await theirs.post("/modalities/self/query", content=_content(body)))
        assert ours == expected, body
    for path in ("/modalities/nosuch/query", "/modalities/dead/query"):
        ours = _answer(await http.post(path, json={"Level": "Study"}))
        assert ours == _answer(await theirs.post(path, json={"Level": "Study"})), path
    known = await _query(http, QUERIES[0]), await _query(theirs, QUERIES[0])
    for suffix in ("", "/answers", "/answers/0/content", "/level"):
        assert _answer(await http.get(f"/queries/nosuch{suffix}")) == _answer(
            await theirs.get(f"/queries/nosuch{suffix}")
        )
    for suffix, method in (("/answers/99/content", "GET"), ("/answers/x/retrieve", "POST"), ("/answers/99", "GET")):
        ours = _answer(await http.request(method, f"/queries/{known[0]}{suffix}"))
        assert ours == _answer(await theirs.request(method, f"/queries/{known[1]}{suffix}")), suffix
    for client, query_id in ((http, known[0]), (theirs, known[1])):
        assert (await client.delete("/queries/nosuch")).status_code == 200
        assert (await client.delete(f"/queries/{query_id}")).status_code == 200
        assert query_id not in (await client.get("/queries")).json()
        assert (await client.get(f"/queries/{query_id}")).status_code == 404


OLD_FINDS: list[tuple[str, Any]] = [
    ("find-patient", {"PatientName": "DOE*"}),
    ("find-patient", {}),
    ("find-study", {"PatientID": "PAT1"}),
    ("find-study", {"PatientName": "*"}),  # no patient nor accession: refused with an empty 400
    ("find-series", {"PatientID": "PAT1", "StudyInstanceUID": STUDY_CHEST}),
    ("find-series", {"PatientID": "PAT1"}),
    ("find-instance", {"AccessionNumber": "ACC1", "StudyInstanceUID": STUDY_CHEST, "SeriesInstanceUID": uid(1, 1)}),
    ("find", {"PatientName": "DOE*"}),
    ("find-patient", "garbage"),
    ("find-patient", {"NoSuchTag": "x"}),
    ("find-worklist", {"PatientName": "*"}),  # Orthanc answers no worklist without its plugin
    ("find-worklist", "garbage"),
]


def _sorted_answers(answer: tuple[int, Any]) -> tuple[int, Any]:
    status, body = answer
    return (status, sorted(body, key=_canonical)) if isinstance(body, list) else answer


def _without_added_details(ours: tuple[int, Any], expected: tuple[int, Any]) -> tuple[int, Any]:
    """Our answer, less the Details we add where Orthanc gives none (an unknown tag's name, say)."""
    status, body = ours
    if isinstance(body, dict) and isinstance(expected[1], dict) and "Details" not in expected[1]:
        body = {key: value for key, value in body.items() if key != "Details"}
    return status, body


async def test_older_finds_answer_as_orthanc(
    node: NodeContext, http: httpx.AsyncClient, theirs: httpx.AsyncClient
) -> None:
    for route, body in OLD_FINDS:
        path = f"/modalities/self/{route}"
        ours = _sorted_answers(_answer(await http.post(path, content=_content(body))))
        expected = _sorted_answers(_answer(await theirs.post(path, content=_content(body))))
        assert _without_added_details(ours, expected) == expected, (route, body)
