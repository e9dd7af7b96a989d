"""Files no index entry points at: swept at start-up once old enough, and never made by a race.

A crash between the rename of a new file and the index commit (or between a deletion's
commit and the removal of its files) leaves such files; the state is reproduced exactly
by writing through the node's own file store without indexing. The sweep runs in the
background: the tests on virtual time wait until every task of the node is idle.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from node.config import Config
from node.context import NodeContext
from node.storage.files import TEMPORARY_SUFFIX, FileStore
from node.storage.settings import StorageSettings
from node.storage.sweep import ORPHAN_MIN_AGE_SECONDS, sweep_storage
from tests.support.datasets import make_dicom
from tests.support.node import client_of, node_config, start_node
from tests.support.storage import stored_files

OLD = time.time() - 2 * ORPHAN_MIN_AGE_SECONDS


def quiet_config(tmp_path: Path) -> Config:
    """No HTTP nor DICOM: on virtual time, the node is idle once its start-up work is done."""
    return node_config(tmp_path, HttpServerEnabled=False, DicomServerEnabled=False)


def age(path: Path) -> Path:
    """Last modified long enough ago for the sweep to consider it."""
    os.utime(path, (OLD, OLD))
    return path


def old_file(path: Path) -> Path:
    path.write_bytes(b"")
    return age(path)


async def test_start_up_sweep_removes_old_unindexed_files(
    tmp_path: Path, autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = quiet_config(tmp_path)
    async with trio.open_nursery() as nursery:
        node: NodeContext = await start_node(nursery, config)
        stored = await node.ingest.store(make_dicom())
        nursery.cancel_scope.cancel()
    store = FileStore(StorageSettings.from_config(config).storage_directory)
    (indexed,) = stored_files(store)
    age(indexed)
    # What a crash leaves: files renamed into place but never indexed, and half-written ones.
    old_orphan = age(store.path_of(store.write(b"old orphan")[0]))
    young_orphan = store.path_of(store.write(b"young orphan")[0])
    half_written = store.path_of(store.write(b"half")[0])
    old_temporary = half_written.with_name(half_written.name + TEMPORARY_SUFFIX)
    age(half_written.rename(old_temporary))
    # Anything the store did not name is not its business.
    foreign = [old_file(indexed.parent / "notes.txt"), old_file(store.root / str(uuid.uuid4()))]

    caplog.set_level(logging.WARNING, logger="node.storage.sweep")
    async with trio.open_nursery() as nursery:
        node = await start_node(nursery, config)
        await trio.testing.wait_all_tasks_blocked()
        assert not old_orphan.exists() and not old_temporary.exists()
        assert young_orphan.exists() and indexed.exists() and all(p.exists() for p in foreign)
        assert await node.resources.instance_file(stored.ids[3]) == indexed.read_bytes()
        nursery.cancel_scope.cancel()
    assert "removed 1 files unknown to the index and 1 half-written files" in caplog.text


async def test_sweep_asks_the_index_in_batches(nursery: trio.Nursery, tmp_path: Path, autojump_clock: Any) -> None:
    """More unindexed files in one folder than one question to the index holds, around an indexed one."""
    node = await start_node(nursery, quiet_config(tmp_path))
    await trio.testing.wait_all_tasks_blocked()  # the start-up sweep is over
    stored = await node.ingest.store(make_dicom())
    (indexed,) = stored_files(node.files)
    age(indexed)
    top = indexed.parent.parent.name
    orphans = []
    for number in range(1234):
        name = str(uuid.UUID(top + f"{number:030x}"))
        folder = node.files.root / name[0:2] / name[2:4]
        folder.mkdir(exist_ok=True)
        orphans.append(old_file(folder / name))
    result = await sweep_storage(node.files, node.index)
    assert (result.orphans, result.temporaries) == (1234, 0)
    assert stored_files(node.files) == [indexed]
    assert await node.resources.instance_file(stored.ids[3]) == indexed.read_bytes()


async def test_attachment_put_racing_a_delete_leaves_no_file(nursery: trio.Nursery, tmp_path: Path) -> None:
    """The resource is deleted while the attachment's file is being written: 404, and no file stays."""

    class DeleteWhileWriting(FileStore):
        victim: str | None = None
        http: httpx.AsyncClient

        def write(self, data: bytes, *args: Any, **options: Any) -> tuple[str, int]:
            written = super().write(data, *args, **options)
            if self.victim is not None:  # in the worker thread, between the file write and the index update
                deleted = trio.from_thread.run(self.http.delete, f"/instances/{self.victim}")
                assert deleted.status_code == 200
            return written

    node = await start_node(nursery, node_config(tmp_path), file_store=DeleteWhileWriting)
    store = node.files
    assert isinstance(store, DeleteWhileWriting)
    async with client_of(node) as http:
        instance = (await http.post("/instances", content=make_dicom())).json()["ID"]
        store.http, store.victim = http, instance
        answer = await http.put(f"/instances/{instance}/attachments/1025", content=b"attached")
        assert answer.status_code == 404
        assert answer.json()["OrthancStatus"] == 17
        store.victim = None
        assert (await http.get("/statistics")).json()["CountInstances"] == 0
    assert stored_files(store) == []
