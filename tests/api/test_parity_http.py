"""HTTP-level answers as Orthanc 1.10.1 gives them (each checked against it): method override,
headers of empty answers, unknown routes, compressed answers, Orthanc Explorer's uploads, /plugins."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from tests.support.datasets import make_dataset, make_dicom, to_bytes
from tests.support.rest import assert_error, count_instances, upload

EXPLORER = {"X-Requested-With": "XMLHttpRequest"}
PLAIN = {"Accept-Encoding": "identity"}


async def test_method_override_by_url_argument(http: httpx.AsyncClient) -> None:
    stored = await upload(http, make_dicom())
    deleted = await http.get(f"/instances/{stored['ID']}", params={"_method": "delete"})
    assert deleted.status_code == 200 and deleted.json() == {"RemainingAncestor": None}
    assert await count_instances(http) == 0
    # An empty _method changes nothing; one naming neither PUT nor DELETE is an empty 400.
    assert (await http.get("/system", params={"_method": ""})).status_code == 200
    for method in ("FOO", "get", "post"):
        refused = await http.get("/system", params={"_method": method})
        assert refused.status_code == 400 and refused.content == b"", method
    wrong = await http.post("/tools/now", headers={"X-HTTP-Method-Override": "FOO"})
    assert wrong.status_code == 400 and wrong.content == b""


async def test_empty_answers_have_no_content_type(http: httpx.AsyncClient) -> None:
    wrong_method = await http.put("/system")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    assert "content-type" not in wrong_method.headers and wrong_method.content == b""
    assert "content-type" not in (await http.get("/patients/nope")).headers


async def test_unknown_routes_are_error_17_but_webdav_is_not_served(http: httpx.AsyncClient) -> None:
    for path in ("/foo", "/tools/foo", "/webdav/", "/webdav/foo"):
        assert_error(await http.get(path), 404, 17)
    static = await http.get("/app/nope")
    assert static.status_code == 404 and static.content == b""


async def test_answers_compressed_as_the_client_accepts(http: httpx.AsyncClient) -> None:
    stored = await upload(http, make_dicom())
    path = f"/instances/{stored['ID']}/tags"
    plain = await http.get(path, headers=PLAIN)
    assert "content-encoding" not in plain.headers
    for accepted, encoding in (
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("deflate, gzip", "gzip"),
        ("br, gzip", "gzip"),
    ):
        # Read raw: the client must not undo what is checked.
        async with http.stream("GET", path, headers={"Accept-Encoding": accepted}) as answer:
            raw = b"".join([chunk async for chunk in answer.aiter_raw()])
        assert answer.headers["content-encoding"] == encoding, accepted
        assert int(answer.headers["content-length"]) == len(raw)
        assert (gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)) == plain.content
    # Tokens are taken as they are (no case folding, no q-values), and errors are never compressed.
    for accepted in ("GZIP", "gzip;q=0", "x-gzip", "*"):
        answer = await http.get(path, headers={"Accept-Encoding": accepted})
        assert "content-encoding" not in answer.headers, accepted
    error = await http.get("/studies/nope/series", headers={"Accept-Encoding": "gzip"})
    assert error.status_code == 404 and "content-encoding" not in error.headers
    small = await http.get("/tools/now", headers={"Accept-Encoding": "gzip"})
    assert small.headers["content-encoding"] == "gzip"  # Orthanc compresses even a few bytes


@pytest.mark.parametrize("config_overrides", [{"HttpCompressionEnabled": False}])
async def test_no_compression_when_disabled(http: httpx.AsyncClient) -> None:
    answer = await http.get("/system", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200 and "content-encoding" not in answer.headers


def _form(*files: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files[]", (f"{i}.dcm", data, "application/octet-stream")) for i, data in enumerate(files)]


async def test_orthanc_explorer_upload(http: httpx.AsyncClient) -> None:
    first, second = (to_bytes(make_dataset(patient_id=f"EXP{i}")) for i in range(2))
    headers = {**EXPLORER, "X-File-Size": str(len(first))}
    one = await http.post("/instances", files=_form(first), headers=headers)
    assert one.status_code == 200 and one.content == b""
    several = await http.post("/instances", files=_form(first, second), headers=EXPLORER)
    assert several.status_code == 200 and several.content == b""
    assert await count_instances(http) == 2
    # The first file refused ends the request with its error; the files before it stay stored.
    third = to_bytes(make_dataset(patient_id="EXP3"))
    body = assert_error(
        await http.post("/instances", files=_form(third, b"not dicom", first), headers=EXPLORER), 400, 15
    )
    assert body["Method"] == "POST"
    assert await count_instances(http) == 3


async def test_plugins_list_only_the_explorer_extension(http: httpx.AsyncClient) -> None:
    assert (await http.get("/plugins")).json() == ["explorer.js"]
    script = await http.get("/plugins/explorer.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("application/javascript")
    assert (await http.get("/plugins/other")).status_code == 404
