"""/tools: the index, clock, UID generation and the settings changed at run time."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import httpx

from tests.support.rest import assert_error

UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")


async def test_tools_index(http: httpx.AsyncClient) -> None:
    tools = (await http.get("/tools")).json()
    assert len(tools) == 33 and tools == sorted(tools)
    assert {"find", "lookup", "now", "now-local", "generate-uid", "default-encoding"} <= set(tools)


async def test_now_is_utc(http: httpx.AsyncClient) -> None:
    answer = await http.get("/tools/now")
    assert answer.headers["content-type"].startswith("text/plain")
    moment = datetime.strptime(answer.text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert abs((moment - datetime.now(UTC)).total_seconds()) < 120
    local = (await http.get("/tools/now-local")).text
    assert re.fullmatch(r"\d{8}T\d{6}", local)


async def test_generate_uid(http: httpx.AsyncClient) -> None:
    patient = (await http.get("/tools/generate-uid", params={"level": "patient"})).text
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", patient)
    uids = {(await http.get("/tools/generate-uid", params={"level": level})).text for level in ("study", "series")}
    uids.add((await http.get("/tools/generate-uid", params={"level": "instance"})).text)
    assert len(uids) == 3 and all(UID.match(u) and len(u) <= 64 for u in uids)
    for params in ({"level": "Study"}, {"level": "nope"}, {}):
        answer = await http.get("/tools/generate-uid", params=params)
        assert answer.status_code == 404 and answer.content == b""


async def test_execute_script_is_forbidden(http: httpx.AsyncClient) -> None:
    answer = await http.post("/tools/execute-script", content=b'print("hello")')
    assert answer.status_code == 403 and answer.content == b""


async def test_default_encoding(http: httpx.AsyncClient, node) -> None:
    assert (await http.get("/tools/default-encoding")).text == "Latin1"
    answer = await http.put("/tools/default-encoding", content=b"utf8")
    assert answer.status_code == 200 and answer.text == "Utf8"
    assert (await http.get("/tools/default-encoding")).text == "Utf8"
    assert node.runtime.default_encoding == "Utf8"
    assert_error(await http.put("/tools/default-encoding", content=b"Latin9"), 400, 3)
    assert (await http.get("/tools/default-encoding")).text == "Utf8"


async def test_accepted_transfer_syntaxes(http: httpx.AsyncClient, node) -> None:
    default = (await http.get("/tools/accepted-transfer-syntaxes")).json()
    assert default[:2] == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    assert default.index("1.2.840.10008.1.2.4.50") < default.index("1.2.840.10008.1.2.4.100")
    answer = await http.put("/tools/accepted-transfer-syntaxes", json=["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"])
    assert answer.json() == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    assert node.runtime.accepted_transfer_syntaxes == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    jpeg = (await http.put("/tools/accepted-transfer-syntaxes", content=b"1.2.840.10008.1.2.4.5?")).json()
    assert jpeg == [f"1.2.840.10008.1.2.4.{n}" for n in range(50, 60)]
    single = await http.put("/tools/accepted-transfer-syntaxes", content=b'"1.2.840.10008.1.2.1"')
    assert single.json() == ["1.2.840.10008.1.2.1"]
    for bad in (b"[1]", b'{"a": 1}', b'["1.2", 3]'):
        assert_error(await http.put("/tools/accepted-transfer-syntaxes", content=bad), 400, 15)
    assert (await http.get("/tools/accepted-transfer-syntaxes")).json() == ["1.2.840.10008.1.2.1"]


async def test_unknown_sop_class_accepted(http: httpx.AsyncClient, node) -> None:
    assert (await http.get("/tools/unknown-sop-class-accepted")).text == "0"
    for body, expected in ((b"1", "1"), (b"false", "0"), (b" true ", "1")):
        answer = await http.put("/tools/unknown-sop-class-accepted", content=body)
        assert answer.status_code == 200 and answer.content == b""
        assert (await http.get("/tools/unknown-sop-class-accepted")).text == expected
    body = assert_error(await http.put("/tools/unknown-sop-class-accepted", content=b"yes"), 400, 15)
    assert body["Details"] == "Boolean value expected"
    assert node.runtime.unknown_sop_class_accepted is True


async def test_log_level(http: httpx.AsyncClient) -> None:
    saved = {name: logging.getLogger(name).level for name in ("node", "node.http", "hypercorn", "node.lua")}
    try:
        assert (await http.put("/tools/log-level", content=b"trace")).status_code == 200
        assert (await http.get("/tools/log-level")).text == "trace"
        assert (await http.put("/tools/log-level-http", content=b"default")).status_code == 200
        assert (await http.get("/tools/log-level-http")).text == "default"
        assert logging.getLogger("node.http").level == logging.WARNING
        assert (await http.get("/tools/log-level-generic")).text == "trace"
        await http.put("/tools/log-level-lua", content=b"verbose")
        assert (await http.get("/tools/log-level-lua")).text == "verbose"
        body = assert_error(await http.put("/tools/log-level", content=b"VERBOSE"), 400, 3)
        assert body["Details"] == 'Verbosity can be "default", "verbose" or "trace": VERBOSE'
        assert (await http.get("/tools/log-level-nope")).status_code == 404
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
