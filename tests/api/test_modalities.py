"""/modalities: listing, describing, creating, replacing and deleting modalities (kept in the index
with DicomModalitiesInDatabase), their effect on our SCP at once, and the C-ECHO SCU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from tests.support.node import client_of, node_config, start_node, start_stoppable_node
from tests.support.remote_bodies import MODALITY_CASES, check_put
from tests.support.remote_ends import echo_answered_with, refusing_port, silent_port
from tests.support.rest import assert_error
from tests.support.storescp import running_storescp

DECLARED = {
    "viewer": {"AET": "VIEWER", "Host": "10.0.0.7", "Port": "104", "Manufacturer": "SyngoVia", "LocalAet": "ME"},
    "archive": ["ARCHIVE", "127.0.0.1", 11112],
}
SUB_ROUTES = [
    "configuration", "echo", "find", "find-instance", "find-patient", "find-series", "find-study", "find-worklist",
    "move", "query", "storage-commitment", "store", "store-straight",
]  # fmt: skip
ARCHIVE = {
    "AET": "ARCHIVE", "AllowEcho": True, "AllowEventReport": True, "AllowFind": True, "AllowFindWorklist": True,
    "AllowGet": True, "AllowMove": True, "AllowNAction": True, "AllowStore": True, "AllowTranscoding": True,
    "Host": "127.0.0.1", "LocalAet": "", "Manufacturer": "Generic", "Port": 11112, "Timeout": 0, "UseDicomTls": False,
}  # fmt: skip
JSON = "application/json"
NETWORK_PROTOCOL, INEXISTENT_ITEM, BAD_FILE_FORMAT, FIND_UNAVAILABLE = 9, 7, 15, 2016
ECHO_TIMEOUT = 1  # s, the shortest a body may ask for
PATIENCE = 10  # s: an echo that gives up after ECHO_TIMEOUT answers well within this


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"DicomModalities": DECLARED}


async def test_declared_modalities_listed_and_described(http: httpx.AsyncClient) -> None:
    assert (await http.get("/modalities")).json() == ["archive", "viewer"]
    expanded = (await http.get("/modalities?expand")).json()
    assert list(expanded) == ["archive", "viewer"] and expanded["archive"] == ARCHIVE
    viewer = expanded["viewer"]
    assert (viewer["Port"], viewer["Manufacturer"], viewer["LocalAet"]) == (104, "GenericNoWildcardInDates", "ME")
    assert (await http.get("/modalities/viewer/configuration")).json() == viewer
    assert (await http.get("/modalities/viewer")).json() == SUB_ROUTES
    unknown = await http.get("/modalities/nope")
    assert unknown.status_code == 404 and unknown.content == b""
    assert_error(
        await http.get("/modalities/nope/configuration"), 404, INEXISTENT_ITEM, "No modality with symbolic name: nope"
    )


async def test_put_answers_as_orthanc(http: httpx.AsyncClient) -> None:
    for number, case in enumerate(MODALITY_CASES):
        await check_put(http, f"/modalities/case{number}", case)


async def test_put_replaces_and_delete_removes(http: httpx.AsyncClient) -> None:
    assert (await http.put("/modalities/archive", json={"AET": "OTHER", "Host": "h", "Port": 5})).status_code == 200
    assert (await http.get("/modalities/archive/configuration")).json()["AET"] == "OTHER"
    deleted = await http.delete("/modalities/archive")
    assert deleted.status_code == 200 and deleted.content == b"" and deleted.headers["content-type"] == "text/plain"
    assert (await http.get("/modalities")).json() == ["viewer"]
    for name in ("archive", "bad.name"):
        details = f"Unknown DICOM modality with symbolic name: {name}"
        assert_error(await http.delete(f"/modalities/{name}"), 404, INEXISTENT_ITEM, details)
    wrong = await http.post("/modalities/viewer", content=b"{}")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET,PUT,DELETE"


async def test_symbolic_names(http: httpx.AsyncClient) -> None:
    """Letters, digits, dash and underscore only; the body is checked first."""
    details = "Only alphanumeric, dash characters and underscores are allowed in the names of modalities/peers, but found: "
    for name in ("bad.name", "bad name", "é"):
        assert_error(await http.put(f"/modalities/{name}", json=["A", "h", 1]), 400, BAD_FILE_FORMAT, details + name)
    assert_error(await http.put("/modalities/bad.name", json=["A", "h", 0]), 400, 3)
    assert (await http.put("/modalities/Good-name_2", json=["A", "h", 1])).status_code == 200
    assert "Good-name_2" in (await http.get("/modalities")).json()


# -- in the index ---------------------------------------------------------------------------------


async def test_modalities_in_database_survive_a_restart(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Kept in the index, answered once saved; the configuration file's section is then ignored."""
    config = node_config(tmp_path, DicomModalities=DECLARED, DicomModalitiesInDatabase=True)
    first = await start_stoppable_node(nursery, config)
    async with client_of(first.context) as http:
        assert (await http.get("/modalities")).json() == []
        assert (await http.put("/modalities/kept", json={"AET": "KEPT", "Host": "h", "Port": 7, "Timeout": 3})).is_success
        assert (await http.put("/modalities/gone", json=["GONE", "h", 8])).is_success
        assert (await http.delete("/modalities/gone")).is_success
        kept = (await http.get("/modalities/kept/configuration")).json()
    first.stop()
    await first.stopped.wait()
    second = await start_node(nursery, config)
    async with client_of(second) as http:
        assert (await http.get("/modalities?expand")).json() == {"kept": kept}
    assert second.remotes.modalities.get("kept").timeout == 3


async def test_modalities_in_memory_are_lost_on_restart(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, DicomModalities=DECLARED)
    first = await start_stoppable_node(nursery, config)
    async with client_of(first.context) as http:
        assert (await http.put("/modalities/added", json=["ADDED", "h", 7])).is_success
        assert (await http.delete("/modalities/viewer")).is_success
    first.stop()
    await first.stopped.wait()
    async with client_of(await start_node(nursery, config)) as http:
        assert (await http.get("/modalities")).json() == ["archive", "viewer"]


# -- C-ECHO SCU -----------------------------------------------------------------------------------


async def echo(http: httpx.AsyncClient, name: str, body: Any = None) -> httpx.Response:
    return await http.post(f"/modalities/{name}/echo", content=b"" if body is None else body)


async def test_echo_our_own_node_and_its_permissions_at_once(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A second node echoes the first, with a C-FIND as the AE title QRTEST: C-FIND is not always
    allowed there (DicomAlwaysAllowFind false), so it succeeds exactly while the first node
    declares QRTEST with AllowFind, as changed through REST."""
    target = {"AET": "ORTHANC", "Host": "127.0.0.1", "Port": node.ports["dicom"], "LocalAet": "QRTEST"}
    other = await start_node(nursery, node_config(tmp_path / "other", DicomModalities={"first": target}))
    qrtest = {"AET": "QRTEST", "Host": "127.0.0.1", "Port": 104}
    async with client_of(other) as scu:
        answer = await echo(scu, "first")
        assert answer.status_code == 200 and answer.json() == {} and answer.headers["content-type"] == JSON
        check = '{"CheckFind": true}'
        assert_error(await echo(scu, "first", check), 500, NETWORK_PROTOCOL)  # our SCP aborts the refused C-FIND
        assert (await http.put("/modalities/qr", json=qrtest)).is_success
        assert (await echo(scu, "first", check)).json() == {}
        assert (await http.put("/modalities/qr", json={**qrtest, "AllowFind": False})).is_success
        assert_error(await echo(scu, "first", check), 500, NETWORK_PROTOCOL)
        assert (await http.put("/modalities/qr", json=qrtest)).is_success
        assert (await echo(scu, "first", check)).json() == {}
        assert (await http.delete("/modalities/qr")).is_success
        assert_error(await echo(scu, "first", check), 500, NETWORK_PROTOCOL)


async def test_echo_checks_find_by_default_when_configured(nursery: trio.Nursery, tmp_path: Path) -> None:
    """DicomEchoChecksFind: the C-FIND is part of every echo unless the body says otherwise."""
    first = await start_node(nursery, node_config(tmp_path / "first"))  # QRTEST may not C-FIND there
    target = {"AET": "ORTHANC", "Host": "127.0.0.1", "Port": first.ports["dicom"], "LocalAet": "QRTEST"}
    config = node_config(tmp_path / "second", DicomModalities={"first": target}, DicomEchoChecksFind=True)
    async with client_of(await start_node(nursery, config)) as scu:
        assert_error(await echo(scu, "first"), 500, NETWORK_PROTOCOL)
        assert (await echo(scu, "first", '{"CheckFind": false}')).json() == {}


async def test_echo_dcmtk_storescp(http: httpx.AsyncClient, tmp_path: Path) -> None:
    async with running_storescp(tmp_path / "received", "STORESCP") as port:
        assert (await http.put("/modalities/scp", json=["STORESCP", "127.0.0.1", port])).is_success
        for body in (None, "{}", "[]", "5", '"text"', '{"Timeout": 0, "Other": 1}'):  # not an object: no options
            answer = await echo(http, "scp", body)
            assert answer.status_code == 200 and answer.json() == {}, body
        details = "Remote AET is STORESCP"  # storescp takes no C-FIND
        assert_error(await echo(http, "scp", '{"CheckFind": true}'), 500, FIND_UNAVAILABLE, details)


async def test_echo_rejected(http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path) -> None:
    """A node that checks the called AE title rejects the association."""
    strict = await start_node(nursery, node_config(tmp_path / "strict", DicomCheckCalledAet=True))
    assert (await http.put("/modalities/strict", json=["WRONG", "127.0.0.1", strict.ports["dicom"]])).is_success
    body = assert_error(await echo(http, "strict"), 500, NETWORK_PROTOCOL)
    assert body["Details"].startswith('DicomAssociation - connecting to AET "WRONG": DUL Association Rejected')


async def test_echo_refused_connection(http: httpx.AsyncClient) -> None:
    with refusing_port() as port:
        assert (await http.put("/modalities/closed", json=["CLOSED", "127.0.0.1", port])).is_success
        details = 'DicomAssociation - connecting to AET "CLOSED": TCP Initialization Error: Connection refused'
        assert_error(await echo(http, "closed"), 500, NETWORK_PROTOCOL, details)


async def test_echo_silent_remote_times_out(http: httpx.AsyncClient) -> None:
    """The body's Timeout wins over the modality's."""
    with silent_port() as port:
        modality = {"AET": "SILENT", "Host": "127.0.0.1", "Port": port, "Timeout": 600}
        assert (await http.put("/modalities/silent", json=modality)).is_success
        with trio.fail_after(PATIENCE):
            answer = await echo(http, "silent", f'{{"Timeout": {ECHO_TIMEOUT}}}')
    body = assert_error(answer, 500, NETWORK_PROTOCOL)
    assert body["Details"].startswith('DicomAssociation - connecting to AET "SILENT": DUL network read timeout')


async def test_echo_failed_status_is_a_bare_500(http: httpx.AsyncClient, nursery: trio.Nursery) -> None:
    port = await echo_answered_with(nursery, 0x0110)  # processing failure
    assert (await http.put("/modalities/failing", json=["FAILING", "127.0.0.1", port])).is_success
    answer = await echo(http, "failing")
    assert answer.status_code == 500 and answer.content == b""


async def test_echo_bad_requests(http: httpx.AsyncClient) -> None:
    """The body is read first, then the modality looked up, then its Timeout; CheckFind only once the
    echo succeeded (so an unreachable remote is reported first)."""
    cases = [
        ("viewer", "notjson", 400, BAD_FILE_FORMAT, "Cannot parse the JSON body"),
        ("nope", "notjson", 400, BAD_FILE_FORMAT, "Cannot parse the JSON body"),
        ("nope", '{"Timeout": "x"}', 404, INEXISTENT_ITEM, "No modality with symbolic name: nope"),
        ("viewer", '{"Timeout": "x"}', 400, BAD_FILE_FORMAT, "Integer value expected in field: Timeout"),
        ("viewer", '{"Timeout": 1.5}', 400, BAD_FILE_FORMAT, "Integer value expected in field: Timeout"),
        ("viewer", '{"Timeout": -1}', 400, BAD_FILE_FORMAT, "Unsigned integer value expected in field: Timeout"),
    ]
    for name, body, status, code, details in cases:
        assert_error(await echo(http, name, body), status, code, details)
    with refusing_port() as port:
        assert (await http.put("/modalities/closed", json=["CLOSED", "127.0.0.1", port])).is_success
        assert_error(await echo(http, "closed", '{"CheckFind": "x"}'), 500, NETWORK_PROTOCOL)
    wrong = await http.get("/modalities/viewer/echo")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
