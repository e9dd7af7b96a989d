"""The kept-alive poster of peer stores: one connection for a whole job, a connection the peer
closed between two requests replaced without losing an instance, and the peers it leaves to httpx."""

from __future__ import annotations

import httpx
import pytest
import trio

from node.context import NodeContext
from node.remotes.orthanc_peer import parse_peer
from node.transfers.peer_client import PeerClient, PeerTarget
from node.transfers.peer_poster import KeptAlivePoster, instance_poster
from tests.support.datasets import make_dicom
from tests.support.http_remotes import start_http_remote
from tests.support.keep_alive_remote import start_keep_alive_remote
from tests.support.rest import upload

TIMEOUT = 10.0


def _target(url: str) -> PeerTarget:
    return PeerTarget(parse_peer([url]), TIMEOUT, True)


async def test_a_keep_alive_ended_by_the_peer_loses_nothing(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_http_remote(nursery, 200, hang_up=True)
    await node.remotes.peers.put("flaky", [remote.url])
    stored = [await upload(http, make_dicom(patient_id="HANGUP", instance_number=n)) for n in range(3)]
    answer = await http.post("/peers/flaky/store", json=[item["ID"] for item in stored])
    assert answer.status_code == 200, answer.text
    assert answer.json()["FailedInstancesCount"] == 0
    assert remote.requests == ["POST /instances HTTP/1.1"] * 3


async def test_one_connection_for_a_whole_job(
    node: NodeContext, http: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    remote = await start_keep_alive_remote(nursery)
    await node.remotes.peers.put("counting", [remote.url])
    stored = [await upload(http, make_dicom(patient_id="KEEP", instance_number=n)) for n in range(5)]
    answer = await http.post("/peers/counting/store", json=[item["ID"] for item in stored])
    assert answer.status_code == 200, answer.text
    assert (remote.requests, remote.connections) == (5, 1)


@pytest.mark.parametrize(
    ("url", "general"),
    [("http://127.0.0.1:8042/", False), ("https://example.org/orthanc/", False), ("http://u:p@127.0.0.1/", True)],
)
def test_peers_left_to_the_general_client(url: str, general: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    poster = instance_poster(_target(url))
    assert isinstance(poster, PeerClient if general else KeptAlivePoster)


def test_a_proxy_from_the_environment_goes_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert isinstance(instance_poster(_target("http://10.1.2.3:8042/")), PeerClient)
