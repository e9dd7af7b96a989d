"""/peers: listing, describing (the password never shown), creating, replacing and deleting Orthanc
peers, kept in the index with OrthancPeersInDatabase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.support.node import client_of, node_config, start_node, start_stoppable_node
from tests.support.remote_bodies import PEER_CASES, check_put
from tests.support.rest import assert_error

DECLARED = {
    "remote": {
        "Url": "http://127.0.0.1:8043",
        "Username": "alice",
        "Password": "secret",
        "HttpHeaders": {"X-Token": "t", "Accept-Language": "fr"},
        "Site": "north",
    },
    "plain": ["https://pacs.example/orthanc/"],
}
REMOTE = {
    "HttpHeaders": ["Accept-Language", "X-Token"],
    "Password": None,
    "Pkcs11": False,
    "Site": "north",
    "Timeout": 0,
    "Url": "http://127.0.0.1:8043/",
    "Username": "alice",
}
PLAIN = {"HttpHeaders": [], "Pkcs11": False, "Timeout": 0, "Url": "https://pacs.example/orthanc/"}
INEXISTENT_ITEM, UNKNOWN_RESOURCE = 7, 17


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"OrthancPeers": DECLARED}


async def test_declared_peers_listed_without_secrets(http: httpx.AsyncClient) -> None:
    assert (await http.get("/peers")).json() == ["plain", "remote"]
    expanded = await http.get("/peers?expand")
    assert expanded.json() == {"plain": PLAIN, "remote": REMOTE}
    assert "secret" not in expanded.text and '"t"' not in expanded.text
    assert (await http.get("/peers/remote/configuration")).json() == REMOTE
    assert (await http.get("/peers/remote")).json() == ["configuration", "store", "store-straight", "system"]
    unknown = await http.get("/peers/nope")
    assert unknown.status_code == 404 and unknown.content == b""
    assert_error(await http.get("/peers/nope/configuration"), 404, UNKNOWN_RESOURCE, "No peer with symbolic name: nope")


async def test_put_answers_as_orthanc(http: httpx.AsyncClient) -> None:
    for number, case in enumerate(PEER_CASES):
        await check_put(http, f"/peers/case{number}", case)


async def test_put_replaces_and_delete_removes(http: httpx.AsyncClient) -> None:
    assert (await http.put("/peers/remote", json=["http://elsewhere:8042"])).status_code == 200
    assert (await http.get("/peers/remote/configuration")).json() == {**PLAIN, "Url": "http://elsewhere:8042/"}
    deleted = await http.delete("/peers/remote")
    assert deleted.status_code == 200 and deleted.content == b""
    assert (await http.get("/peers")).json() == ["plain"]
    assert_error(await http.delete("/peers/remote"), 404, INEXISTENT_ITEM, "Unknown Orthanc peer: remote")
    details = "Only alphanumeric, dash characters and underscores are allowed in the names of modalities/peers, but found: a.b"
    assert_error(await http.put("/peers/a.b", json=["http://x"]), 400, 15, details)


async def test_peers_in_database_keep_their_credentials(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Saved with everything needed to reach the peer (password and header values included), which
    REST never shows; the configuration file's section is ignored."""
    config = node_config(tmp_path, OrthancPeers=DECLARED, OrthancPeersInDatabase=True)
    first = await start_stoppable_node(nursery, config)
    async with client_of(first.context) as http:
        assert (await http.get("/peers")).json() == []
        assert (await http.put("/peers/remote", json=DECLARED["remote"])).is_success
        assert (await http.put("/peers/gone", json=["http://gone"])).is_success
        assert (await http.delete("/peers/gone")).is_success
    first.stop()
    await first.stopped.wait()
    second = await start_node(nursery, config)
    async with client_of(second) as http:
        assert (await http.get("/peers?expand")).json() == {"remote": REMOTE}
    peer = second.remotes.peers.get("remote")
    assert peer.auth() == ("alice", "secret")
    assert dict(peer.headers) == {"X-Token": "t", "Accept-Language": "fr"}
