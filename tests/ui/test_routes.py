"""The server side of the web interface, over HTTP: GET / and /ui, the static files and their
headers, the pending queue in worker order and a job's priority (node/http/routes/ui.py)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from node.context import NodeContext
from node.http.routes.ui import ASSETS, CONTENT_SECURITY_POLICY, CONTENT_TYPES
from node.jobs.record import JobState
from tests.support import job_types
from tests.support.jobs import finished, record_of, until
from tests.support.node import client_of, node_config, start_node
from tests.support.rest import assert_error

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "node" / "http" / "static" / "ui"
# An address on another site, in HTML, CSS or JavaScript (SVG's namespace names no resource).
EXTERNAL = re.compile(r"(https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


@pytest.fixture
async def node(nursery: trio.Nursery, tmp_path: Path) -> NodeContext:
    config = node_config(tmp_path, ConcurrentJobs=1, DicomServerEnabled=False)
    return await start_node(nursery, config, routes=[job_types.blueprint])


async def test_the_root_redirects_to_the_interface_as_orthanc_does_to_its_explorer(http: httpx.AsyncClient) -> None:
    answer = await http.get("/")
    assert (answer.status_code, answer.headers["Location"], answer.content) == (301, "ui/", b"")
    answer = await http.get("/ui")
    assert (answer.status_code, answer.headers["Location"]) == (301, "/ui/")
    # Orthanc's own pages keep their paths: nothing of ours answers there.
    assert (await http.get("/app/explorer.html")).status_code == 404


async def test_every_file_is_served_with_its_type_and_the_policy(http: httpx.AsyncClient) -> None:
    index = await http.get("/ui/")
    assert index.status_code == 200 and index.headers["Content-Type"] == CONTENT_TYPES[".html"]
    assert index.content == ASSETS["index.html"].body
    assert index.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'self'" in CONTENT_SECURITY_POLICY and "http" not in CONTENT_SECURITY_POLICY
    for name, asset in ASSETS.items():
        answer = await http.get(f"/ui/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["Content-Type"] == CONTENT_TYPES["." + name.rpartition(".")[2]]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.content == asset.body


async def test_an_unchanged_file_answers_304(http: httpx.AsyncClient) -> None:
    first = await http.get("/ui/js/main.js")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = await http.get("/ui/js/main.js", headers={"If-None-Match": etag})
    assert (again.status_code, again.content) == (304, b"")
    assert (await http.get("/ui/js/main.js", headers={"If-None-Match": '"other"'})).status_code == 200


@pytest.mark.parametrize(
    "path", ["/ui/missing.js", "/ui/%2e%2e/README.md", "/ui/js/%2E%2E/%2e%2e/pyproject.toml", "/ui/js"]
)
async def test_a_name_outside_the_files_is_an_unknown_resource(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)
    assert answer.url.raw_path.decode() == path  # sent as written: the node decodes it
    assert_error(answer, 404, 17)


def test_the_files_name_no_other_site_and_all_ship_in_the_package() -> None:
    on_disk = sorted(str(path.relative_to(STATIC)) for path in STATIC.rglob("*") if path.is_file())
    assert on_disk == sorted(ASSETS), "a file the interface would not serve"
    for name, asset in ASSETS.items():
        assert not EXTERNAL.search(asset.body.decode("utf-8")), f"{name} names another site"
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["node.http"]
    for name in on_disk:
        assert any(fnmatch.fnmatch(f"static/ui/{name}", glob) for glob in globs), f"{name} is not package data"


async def submit(http: httpx.AsyncClient, **body: Any) -> str:
    answer = await http.post("/test/jobs", json={"Asynchronous": True, "BlockAt": 0, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["ID"]


async def test_the_pending_queue_in_worker_order_and_priority_changes(
    node: NodeContext, http: httpx.AsyncClient
) -> None:
    running = await submit(http)
    with trio.fail_after(10):
        await until(lambda: record_of(node, running).state is JobState.RUNNING)
    low = await submit(http, Priority=0)
    high = await submit(http, Priority=5)
    later = await submit(http, Priority=0)
    assert (await http.get("/ui/api/queue")).json() == [high, low, later]

    answer = await http.put(f"/ui/api/jobs/{later}/priority", json=10)
    assert (answer.status_code, answer.json()) == (200, {})
    assert (await http.get("/ui/api/queue")).json() == [later, high, low]
    assert (await http.get(f"/jobs/{later}")).json()["Priority"] == 10

    # Paused jobs leave the queue; a running one may get a priority too (for a resubmission).
    await http.post(f"/jobs/{high}/pause")
    assert (await http.get("/ui/api/queue")).json() == [later, low]
    assert (await http.put(f"/ui/api/jobs/{running}/priority", json=-3)).status_code == 200
    assert record_of(node, running).priority == -3

    # The worker takes the queue's first once free.
    await http.post(f"/jobs/{running}/cancel")
    with trio.fail_after(10):
        await until(lambda: record_of(node, later).state is JobState.RUNNING)
    assert (await http.get("/ui/api/queue")).json() == [low]
    for job in (later, low, high):
        await http.post(f"/jobs/{job}/cancel")


async def test_a_bad_priority_change_fails_its_request(node: NodeContext, http: httpx.AsyncClient) -> None:
    done = await submit(http, BlockAt=None)
    await finished(node, done)
    assert_error(await http.put(f"/ui/api/jobs/{done}/priority", json=1), 404, 7)
    assert_error(await http.put("/ui/api/jobs/nope/priority", json=1), 404, 7)
    pending = await submit(http)
    assert_error(await http.put(f"/ui/api/jobs/{pending}/priority", content=b'"high"'), 400, 15)
    assert_error(await http.put(f"/ui/api/jobs/{pending}/priority", json=True), 400, 15)
    assert_error(await http.put(f"/ui/api/jobs/{pending}/priority", json=2**31), 400, 3)
    await http.post(f"/jobs/{pending}/cancel")


async def test_the_interface_asks_for_the_credentials_like_every_route(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, RemoteAccessAllowed=True, AuthenticationEnabled=True, RegisteredUsers={"alice": "w"})
    node = await start_node(nursery, config)
    async with client_of(node) as anonymous, client_of(node, auth=("alice", "w")) as alice:
        for path in ("/", "/ui/", "/ui/js/main.js", "/ui/api/queue"):
            refused = await anonymous.get(path)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
        assert (await alice.get("/ui/")).status_code == 200
        assert (await alice.get("/ui/api/queue")).json() == []
