"""A store acknowledged with its file durable but its index entry not (a power cut) is indexed
again at the next start.

A power cut keeps what was flushed: the files, and the index as of its last flush. The test
takes that index as a consistent snapshot (SQLite's backup) once the node serves (its
reserved names journaled), stores an instance, stops the node and puts the snapshot in
place of the index: the state a crash right after the acknowledgment could leave.
"""

from __future__ import annotations

from pathlib import Path

import trio
from pydicom.dataset import Dataset

from node.services.recovery import RECOVERED
from tests.support.datasets import make_dataset
from tests.support.node import client_of, node_config, start_stoppable_node
from tests.support.peers import c_store
from tests.support.storage import index_path, journaled, restore, snapshot

SUCCESS = 0x0000


async def test_a_store_whose_commit_was_lost_is_indexed_again(tmp_path: Path) -> None:
    config = node_config(tmp_path)
    storage = tmp_path / "storage"
    dataset = make_dataset()
    async with trio.open_nursery() as nursery:
        node = await start_stoppable_node(nursery, config)
        await trio.to_thread.run_sync(snapshot, index_path(storage), tmp_path / "before.sqlite")
        statuses = await trio.to_thread.run_sync(c_store, node.context.ports["dicom"], [dataset])
        assert statuses == [SUCCESS]
        async with client_of(node.context) as client:
            (instance,) = (await client.get("/instances")).json()
            sent = (await client.get(f"/instances/{instance}/file")).content
        node.stop()
        await node.stopped.wait()

    names = journaled(tmp_path / "before.sqlite")
    assert names, "the names handed out are journaled before the node serves"
    restore(tmp_path / "before.sqlite", index_path(storage))
    # A name reserved but never written, as a crash leaves it: an empty file.
    unwritten = next(name for name in names if not (storage / name[:2] / name[2:4] / name).exists())
    (storage / unwritten[:2] / unwritten[2:4] / unwritten).touch()

    async with trio.open_nursery() as nursery:
        node = await start_stoppable_node(nursery, config)
        async with client_of(node.context) as client:
            assert (await client.get("/instances")).json() == [instance]
            assert (await client.get(f"/instances/{instance}/file")).content == sent
            assert (await client.get(f"/instances/{instance}/metadata/Origin")).text == RECOVERED.kind
            study = (await client.get(f"/instances/{instance}/study")).json()
            assert study["MainDicomTags"]["StudyInstanceUID"] == dataset.StudyInstanceUID
        assert not (storage / unwritten[:2] / unwritten[2:4] / unwritten).exists()
        assert set(journaled(index_path(storage))).isdisjoint(names), "the old journal is emptied"
        # The sender, never told (had the crash come before the answer), sends it again: that
        # store replaces the recovered one, with what it records of the sender.
        assert await trio.to_thread.run_sync(c_store, node.context.ports["dicom"], [dataset]) == [SUCCESS]
        async with client_of(node.context) as client:
            assert (await client.get("/instances")).json() == [instance]
            assert (await client.get(f"/instances/{instance}/metadata/Origin")).text == "DicomProtocol"
            assert (await client.get(f"/instances/{instance}/file")).content == sent
        node.stop()
        await node.stopped.wait()


async def test_a_durable_store_is_not_indexed_twice(tmp_path: Path) -> None:
    """A clean stop and start: the journal names nothing the index lacks, nothing changes."""
    config = node_config(tmp_path)
    datasets: list[Dataset] = [make_dataset(), make_dataset()]
    async with trio.open_nursery() as nursery:
        node = await start_stoppable_node(nursery, config)
        assert await trio.to_thread.run_sync(c_store, node.context.ports["dicom"], datasets) == [SUCCESS] * 2
        async with client_of(node.context) as client:
            before = (await client.get("/changes", params={"limit": 100})).json()["Changes"]
        node.stop()
        await node.stopped.wait()
        node = await start_stoppable_node(nursery, config)
        async with client_of(node.context) as client:
            assert len((await client.get("/instances")).json()) == len(datasets)
            after = (await client.get("/changes", params={"limit": 100})).json()["Changes"]
        assert after == before
        node.stop()
        await node.stopped.wait()
