"""POST /peers/{id}/store, /store-straight and GET /peers/{id}/system, with a second node of ours as
the peer (with and without credentials) and peers that fail: refused, 401, 500."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from node.context import NodeContext
from tests.support.datasets import make_dicom
from tests.support.http_remotes import start_http_remote
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error, upload

STUDY = "1.2.826.0.1.3680043.8.498.10"
EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
IMPLICIT_LITTLE = "1.2.840.10008.1.2"


async def _study(http: httpx.AsyncClient, count: int = 3) -> list[dict[str, str]]:
    return [await upload(http, make_dicom(patient_id="PEER", study_uid=STUDY, instance_number=n)) for n in range(count)]


async def _other_node(nursery: trio.Nursery, folder: Path, **options: object) -> NodeContext:
    return await start_node(nursery, node_config(folder, Name="peer-b", **options))


async def test_a_study_reaches_the_peer_with_the_same_ids(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    other = await _other_node(nursery, tmp_path / "b")
    url = f"http://127.0.0.1:{other.ports['http']}/"
    await node.remotes.peers.put("b", [url])
    stored = await _study(http)
    answer = await http.post("/peers/b/store", content=stored[0]["ParentStudy"])
    assert answer.status_code == 200, answer.text
    content = answer.json()
    size = sum([len((await http.get(f"/instances/{item['ID']}/file")).content) for item in stored])
    assert content == {
        "Compress": False,
        "Description": "REST API",
        "FailedInstancesCount": 0,
        "InstancesCount": 3,
        "ParentResources": [stored[0]["ParentStudy"]],
        "Peer": [url],
        "Size": str(size),
        "SizeMB": 0,
    }
    async with client_of(other) as http_b:
        assert sorted((await http_b.get("/instances")).json()) == sorted(item["ID"] for item in stored)
        assert (await http.get("/peers/b/system")).json()["Name"] == "peer-b"


async def test_compress_credentials_and_transcode(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    users = {"AuthenticationEnabled": True, "RemoteAccessAllowed": True, "RegisteredUsers": {"alice": "secret"}}
    other = await _other_node(nursery, tmp_path / "b", **users)
    url = f"http://127.0.0.1:{other.ports['http']}/"
    await node.remotes.peers.put("b", [url, "alice", "secret"])
    await node.remotes.peers.put("intruder", [url, "alice", "wrong"])
    stored = await _study(http, 2)
    body = {"Resources": [stored[0]["ID"]], "Compress": True, "Transcode": EXPLICIT_LITTLE}
    content = (await http.post("/peers/b/store", json=body)).json()
    assert content["Compress"] is True and content["Transcode"] == EXPLICIT_LITTLE
    assert content["Peer"] == [url, "alice", ""]  # never the password
    plain = len((await http.get(f"/instances/{stored[0]['ID']}/file")).content)
    assert 0 < int(content["Size"]) < plain  # gzip on the wire
    async with client_of(other, auth=("alice", "secret")) as http_b:
        assert (await http_b.get("/instances")).json() == [stored[0]["ID"]]
    refused = assert_error(await http.post("/peers/intruder/store", content=stored[1]["ID"]), 500, 9)
    assert "401" in refused["Details"]
    assert (await http.get("/peers/intruder/system")).status_code == 401  # the peer's status, passed on
    body = {"Resources": [stored[1]["ID"]], "Transcode": IMPLICIT_LITTLE}
    assert (await http.post("/peers/b/store", json=body)).json()["FailedInstancesCount"] == 0
    async with client_of(other, auth=("alice", "secret")) as http_b:  # the peer received it transcoded
        syntax = await http_b.get(f"/instances/{stored[1]['ID']}/metadata/TransferSyntax")
        assert syntax.text == IMPLICIT_LITTLE


async def test_store_straight_answers_what_the_peer_answered(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery, tmp_path: Path
) -> None:
    other = await _other_node(nursery, tmp_path / "b")
    await node.remotes.peers.put("b", [f"http://127.0.0.1:{other.ports['http']}/"])
    answer = await http.post("/peers/b/store-straight", content=make_dicom(patient_id="STRAIGHT"))
    assert answer.status_code == 200
    assert answer.json()["Status"] == "Success"
    assert (await http.get("/instances")).json() == []  # not stored here
    assert_error(
        await http.post("/peers/b/store-straight", content=b"junk"), 500, 9, "Cannot send DICOM to remote peer: b"
    )


async def test_failing_peers_and_bad_input(node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery) -> None:
    failing = await start_http_remote(nursery, 500)
    await node.remotes.peers.put("failing", [failing.url])
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    closed_port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    await node.remotes.peers.put("closed", [f"http://127.0.0.1:{closed_port}/"])
    instance = (await upload(http, make_dicom()))["ID"]
    details = assert_error(await http.post("/peers/failing/store", content=instance), 500, 9)["Details"]
    assert "HTTP 500" in details and failing.requests == ["POST /instances HTTP/1.1"]
    assert (
        "Couldn't connect" in assert_error(await http.post("/peers/closed/store", content=instance), 500, 9)["Details"]
    )
    assert_error(await http.get("/peers/closed/system"), 500, 9)
    assert_error(await http.get("/peers/nope/system"), 404, 17, "No peer with symbolic name: nope")
    assert_error(await http.post("/peers/nope/store", content=instance), 404, 17, "No peer with symbolic name: nope")
    body = json.dumps({"Resources": [instance], "Compress": "x"})
    assert_error(
        await http.post("/peers/failing/store", content=body), 400, 15, "Boolean value expected in field: Compress"
    )
    body = json.dumps({"Resources": [instance], "Transcode": "1.2.3"})
    assert_error(await http.post("/peers/failing/store", content=body), 400, 15, "Unknown transfer syntax UID: 1.2.3")
    assert len(failing.requests) == 1
