"""A C-STORE's index entry is committed only once its file is durable, even though the SCP
writes the index rows while the file is still being flushed.

The node runs with a file store that holds one flush (the file's, or its folder's) until the
test releases it; meanwhile a second connection to the index, which sees committed rows only,
must not find the instance, and the C-STORE must not be answered. A file written under a
reserved name has only its own flush (its name was flushed before it was handed out): the
folder case runs with a store that creates every file.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio

from node.storage.files import FileStore
from tests.support.datasets import make_dataset
from tests.support.node import node_config, start_node
from tests.support.peers import c_store

WAIT = 30  # s: a bound on waiting for the other thread, never reached when the code is right


class HeldFlush(FileStore):
    """Holds the first flush of the kind ``held`` ("file" or "folder") inside the hashed folders."""

    held = "file"
    holding = threading.Event()
    release = threading.Event()

    def _hold(self, kind: str, path: str) -> None:
        if kind == self.held and path.startswith(str(self.root) + "/") and not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(WAIT)

    def sync_file(self, fd: int, path: str) -> None:
        self._hold("file", path)
        super().sync_file(fd, path)

    def sync_folder(self, path: str) -> None:
        self._hold("folder", path)
        super().sync_folder(path)


def _case(value: object) -> str:
    if isinstance(value, int):
        return "reserved-names" if value else "created"
    return str(value)


def committed_instances(index_path: Path) -> int:
    with sqlite3.connect(index_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM resources WHERE level = 3").fetchone()[0])


@pytest.mark.parametrize(
    ("held", "reserve_stock"), [("file", FileStore.reserve_stock), ("file", 0), ("folder", 0)], ids=_case
)
async def test_the_index_commits_after_the_file_is_durable(
    nursery: trio.Nursery, tmp_path: Path, held: str, reserve_stock: int
) -> None:
    events = {"holding": threading.Event(), "release": threading.Event()}
    store = type("Held", (HeldFlush,), {"held": held, "reserve_stock": reserve_stock, **events})
    node = await start_node(nursery, node_config(tmp_path), file_store=store)
    index_path = node.settings.storage.index_directory / "index.sqlite"
    answers: list[list[int]] = []

    async def send() -> None:
        answers.append(await trio.to_thread.run_sync(c_store, node.ports["dicom"], [make_dataset()]))

    async with trio.open_nursery() as sending:
        sending.start_soon(send)
        try:
            assert await trio.to_thread.run_sync(store.holding.wait, WAIT)
            # The flush is held: whatever the SCP did meanwhile, nothing is committed, nothing answered.
            assert await trio.to_thread.run_sync(committed_instances, index_path) == 0
            assert answers == []
        finally:
            store.release.set()
    assert answers == [[0x0000]]
    assert await trio.to_thread.run_sync(committed_instances, index_path) == 1
