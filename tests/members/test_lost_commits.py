"""Members commit their stores without flushing the index, as a single node does: a store's
file is durable and its name journaled, and the stores a power cut took from the index are
indexed again by the supervisor, once for all, before any member serves. A member started
again alone must leave the names the others journaled alone.

A power cut is played as in tests/storage/test_lost_commit_recovery.py: the index put back as a
snapshot taken before the store (SQLite's backup), its later write-ahead log dropped.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import trio

from node.services.recovery import RECOVERED
from tests.support.datasets import make_dicom
from tests.support.members import FRESH, Cluster, cluster, kill_member
from tests.support.storage import index_path, journaled, restore, snapshot


async def _get(running: Cluster, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=running.url, headers=FRESH) as http:
        return await http.get(path)


async def test_the_supervisor_indexes_again_what_a_power_cut_took(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    before = tmp_path / "before.sqlite"
    async with cluster(tmp_path) as running:
        await trio.to_thread.run_sync(snapshot, index_path(storage), before)
        async with httpx.AsyncClient(base_url=running.url, headers=FRESH) as http:
            stored = (await http.post("/instances", content=make_dicom())).json()
            instance = stored["ID"]
            sent = (await http.get(f"/instances/{instance}/file")).content

    assert journaled(before), "each member journals the names it hands out before it serves"
    restore(before, index_path(storage))
    async with cluster(tmp_path) as running:
        assert (await _get(running, "/instances")).json() == [instance]
        assert (await _get(running, f"/instances/{instance}/file")).content == sent
        assert (await _get(running, f"/instances/{instance}/metadata/Origin")).text == RECOVERED.kind
    assert not set(journaled(before)) & set(journaled(index_path(storage))), "the old journal is emptied"


async def test_a_member_started_again_leaves_the_others_journal_alone(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        names = set(journaled(index_path(tmp_path / "storage")))
        await kill_member(running, min(running.members()))
        # The killed member's names are left for the next start of all; the other's stay its own.
        assert names <= set(journaled(index_path(tmp_path / "storage")))
        async with httpx.AsyncClient(base_url=running.url, headers=FRESH) as http:
            for number in range(4):  # on both members, by the fresh connections
                answer = await http.post("/instances", content=make_dicom(instance_number=number + 1))
                assert answer.status_code == 200
            assert len((await http.get("/instances")).json()) == 4
