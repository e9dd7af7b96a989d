"""REST answers matched to Orthanc 1.10.1 after the differential harness (tests/compat) found
them different; each checked against Orthanc itself: errors of unknown instances on the raw
routes, booleans in request bodies, the bodies /tools/find and /tools/create-dicom refuse, the
paging arguments of resource lists, empty answers of the logs, and the file meta header view."""

from __future__ import annotations

import httpx
import pytest

from node.errors import ErrorCode
from tests.support.datasets import make_dicom
from tests.support.rest import assert_error, upload

INSTANCE_ROUTES = ("file", "tags", "simplified-tags", "header", "content")


@pytest.mark.parametrize("route", INSTANCE_ROUTES)
async def test_an_unknown_instance_is_a_json_error(http: httpx.AsyncClient, route: str) -> None:
    assert_error(await http.get(f"/instances/nothing/{route}"), 404, ErrorCode.UNKNOWN_RESOURCE)


async def test_protection_takes_the_words_of_a_boolean(http: httpx.AsyncClient) -> None:
    patient = (await upload(http, make_dicom()))["ParentPatient"]
    path = f"/patients/{patient}/protected"
    for word, expected in (("true", "1"), (" false ", "0"), ("1", "1"), ("0", "0")):
        answer = await http.put(path, content=word)
        assert answer.status_code == 200 and answer.content == b""
        assert answer.headers["content-type"].startswith("text/plain")
        assert (await http.get(path)).text == expected
    for word in ("maybe", "TRUE", "2", ""):
        assert_error(await http.put(path, content=word), 400, ErrorCode.BAD_FILE_FORMAT, "Boolean value expected")
    assert (await http.get(path)).text == "0"


@pytest.mark.parametrize("route", ["/tools/metrics", "/tools/unknown-sop-class-accepted"])
async def test_switches_take_the_same_words(http: httpx.AsyncClient, route: str) -> None:
    assert (await http.put(route, content="false")).status_code == 200
    assert (await http.get(route)).text == "0"
    assert_error(await http.put(route, content="True"), 400, ErrorCode.BAD_FILE_FORMAT, "Boolean value expected")
    assert (await http.put(route, content=" true")).status_code == 200
    assert (await http.get(route)).text == "1"


NOT_NEGATIVE = 'Field "{}" should be a positive integer'


@pytest.mark.parametrize(
    ("body", "code", "details"),
    [
        ({"Level": "Study"}, ErrorCode.BAD_REQUEST, 'Field "Query" is missing, or should be a JSON object'),
        ({"Level": "Study", "Query": {}, "Limit": -1}, ErrorCode.PARAMETER_OUT_OF_RANGE, NOT_NEGATIVE.format("Limit")),
        (
            {"Level": "Nothing", "Query": {}, "Since": -1},
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            NOT_NEGATIVE.format("Since"),
        ),
        # Both counts are checked for their type before either is checked for its sign.
        (
            {"Level": "Study", "Query": {}, "Limit": -1, "Since": "x"},
            ErrorCode.BAD_REQUEST,
            'Field "Since" should be an integer',
        ),
        (
            {"Level": "Study", "Query": {}, "Limit": -1, "Since": -1},
            ErrorCode.PARAMETER_OUT_OF_RANGE,
            NOT_NEGATIVE.format("Limit"),
        ),
    ],
)
async def test_find_refuses_as_orthanc(
    http: httpx.AsyncClient, body: dict[str, object], code: int, details: str
) -> None:
    assert_error(await http.post("/tools/find", json=body), 400, code, details)


@pytest.mark.parametrize("body", [b"not json", b"{", b"[1]", b"3"])
async def test_create_dicom_refuses_a_body_that_is_no_json_object_with_error_8(
    http: httpx.AsyncClient, body: bytes
) -> None:
    assert_error(await http.post("/tools/create-dicom", content=body), 400, ErrorCode.BAD_REQUEST)


@pytest.mark.parametrize(("query", "missing"), [("since=1", "limit"), ("limit=0", "since")])
async def test_a_missing_paging_argument_names_the_route_with_a_slash(
    http: httpx.AsyncClient, query: str, missing: str
) -> None:
    details = f'Missing "{missing}" argument for GET request against: /series/'
    assert_error(await http.get(f"/series?{query}"), 400, ErrorCode.BAD_REQUEST, details)


@pytest.mark.parametrize("log", ["/changes", "/exports"])
async def test_clearing_a_log_answers_empty_plain_text(http: httpx.AsyncClient, log: str) -> None:
    await upload(http, make_dicom())
    answer = await http.delete(log)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-type"].startswith("text/plain")
    assert (await http.get(log)).json()[log.strip("/").title()] == []


async def test_the_header_leaves_binary_elements_out(http: httpx.AsyncClient) -> None:
    instance = (await upload(http, make_dicom()))["ID"]
    full = (await http.get(f"/instances/{instance}/header")).json()
    assert "0002,0001" not in full  # FileMetaInformationVersion (OB)
    assert full["0002,0010"]["Value"] == "1.2.840.10008.1.2.1"
    simplified = (await http.get(f"/instances/{instance}/header?simplify")).json()
    assert "FileMetaInformationVersion" not in simplified and "TransferSyntaxUID" in simplified
    short = (await http.get(f"/instances/{instance}/header?short")).json()
    assert "0002,0001" not in short and "0002,0002" in short


async def test_protection_of_an_unknown_patient_is_out_of_range(http: httpx.AsyncClient) -> None:
    study = (await upload(http, make_dicom()))["ParentStudy"]
    for resource in ("nothing", study):
        path = f"/patients/{resource}/protected"
        assert_error(await http.get(path), 400, ErrorCode.PARAMETER_OUT_OF_RANGE)
        assert_error(await http.put(path, content="1"), 400, ErrorCode.PARAMETER_OUT_OF_RANGE)
        # The body is read first: a word that is no boolean is refused as such.
        assert_error(await http.put(path, content="maybe"), 400, ErrorCode.BAD_FILE_FORMAT)
