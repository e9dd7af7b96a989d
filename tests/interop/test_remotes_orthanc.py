"""Differential test: the same requests to /modalities and /peers of real Orthanc 1.10.1 and of our
node, from the same configuration, get the same answers.

Compared: status, content type, JSON bodies (lists, expanded objects, configuration
objects) and, for errors, Orthanc's error code and Details. The C-ECHO SCU is compared
too, towards the same remotes: a refusing port and DCMTK's storescp.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import trio

from node.context import NodeContext
from tests.support.node import client_of, node_config, start_node
from tests.support.orthanc import needs_orthanc, running_orthanc
from tests.support.remote_bodies import MODALITY_CASES, PEER_CASES, check_put
from tests.support.remote_ends import refusing_port
from tests.support.storescp import running_storescp

pytestmark = needs_orthanc

MODALITIES = {
    "declared": {"AET": "VIEWER", "Host": "10.0.0.7", "Port": "104", "Manufacturer": "AgfaImpax", "AllowGet": False},
    "plain": ["PLAIN", "127.0.0.1", 11112, "GE"],
}
PEERS = {
    "declared": {"Url": "http://127.0.0.1:8043", "Username": "u", "Password": "secret", "HttpHeaders": {"X-A": "1"}},
    "plain": ["https://pacs.example/orthanc"],
}
CLIENT_TIMEOUT = 30.0


def _requests() -> list[tuple[str, str, str | None]]:
    """(method, path, body) asked to both, in this order, once the remotes of the echo are declared."""
    asked: list[tuple[str, str, str | None]] = []
    for kind in ("modalities", "peers"):
        asked += [
            ("GET", f"/{kind}", None),
            ("GET", f"/{kind}?expand", None),
            ("GET", f"/{kind}/declared", None),
            ("GET", f"/{kind}/nope", None),
            ("GET", f"/{kind}/declared/configuration", None),
            ("GET", f"/{kind}/nope/configuration", None),
            ("DELETE", f"/{kind}/nope", None),
            ("DELETE", f"/{kind}/bad.name", None),
            ("PUT", f"/{kind}/bad.name", json.dumps(["http://x"] if kind == "peers" else ["A", "h", 1])),
            ("POST", f"/{kind}/declared", "{}"),
        ]
    asked += [
        ("POST", "/modalities/closed/echo", None),
        ("POST", "/modalities/closed/echo", '{"CheckFind": "x"}'),
        ("POST", "/modalities/scp/echo", None),
        ("POST", "/modalities/scp/echo", '{"Timeout": 5, "Other": 1}'),
        ("POST", "/modalities/scp/echo", "[1]"),
        ("POST", "/modalities/scp/echo", '{"CheckFind": true}'),
        ("POST", "/modalities/scp/echo", '{"CheckFind": "x"}'),
        ("POST", "/modalities/scp/echo", "notjson"),
        ("POST", "/modalities/scp/echo", '{"Timeout": -1}'),
        ("POST", "/modalities/nope/echo", "{}"),
        ("GET", "/modalities/scp/echo", None),
        ("DELETE", "/modalities/declared", None),
        ("DELETE", "/peers/declared", None),
        ("GET", "/modalities?expand", None),
        ("GET", "/peers?expand", None),
    ]
    return asked


def _comparable(answer: httpx.Response) -> dict[str, Any]:
    """What must be the same in both answers: status, content type of a success, and the JSON (for an
    error, its code and Details; the rest of Orthanc's error body is checked by the REST tests, and
    Orthanc sends errors without a content type)."""
    shown: dict[str, Any] = {"status": answer.status_code}
    if answer.is_success:
        shown["type"] = answer.headers["content-type"].split(";")[0]
    if not answer.content:
        return shown
    body = answer.json()
    if isinstance(body, dict) and "OrthancStatus" in body:
        return {**shown, "code": body["OrthancStatus"], "details": body.get("Details")}
    return {**shown, "body": body}


async def _declare(http: httpx.AsyncClient, closed: int, scp: int) -> None:
    for name, modality in (("closed", ["CLOSED", "127.0.0.1", closed]), ("scp", ["STORESCP", "127.0.0.1", scp])):
        assert (await http.put(f"/modalities/{name}", json=modality)).status_code == 200


async def test_same_answers_as_orthanc(nursery: trio.Nursery, tmp_path: Path) -> None:
    sections = {"DicomModalities": MODALITIES, "OrthancPeers": PEERS}
    ours: NodeContext = await start_node(nursery, node_config(tmp_path / "ours", **sections))
    with (
        refusing_port() as closed,
        running_orthanc(tmp_path / "orthanc", aet="ORTHANC", overrides=sections) as orthanc,
    ):
        async with (
            running_storescp(tmp_path / "received", "STORESCP") as scp,
            client_of(ours) as mine,
            httpx.AsyncClient(base_url=orthanc.http_url, timeout=CLIENT_TIMEOUT) as theirs,
        ):
            for http in (mine, theirs):
                await _declare(http, closed, scp)
            differences = []
            for method, path, body in _requests():
                answers = [await http.request(method, path, content=body) for http in (mine, theirs)]
                mine_shown, theirs_shown = (_comparable(answer) for answer in answers)
                if mine_shown != theirs_shown:
                    differences.append(f"{method} {path} {body}:\n  ours   {mine_shown}\n  Orthanc {theirs_shown}")
            assert not differences, "\n".join(differences)
            # the expected answers of the REST tests are Orthanc's
            for http in (mine, theirs):
                for number, case in enumerate(MODALITY_CASES):
                    await check_put(http, f"/modalities/case{number}", case)
                for number, case in enumerate(PEER_CASES):
                    await check_put(http, f"/peers/case{number}", case)
            for path in ("/modalities?expand", "/peers?expand"):
                assert (await mine.get(path)).json() == (await theirs.get(path)).json()
