"""Which folders a durable write flushes: the names it created, and those a concurrent write is
still creating, but not the names of folders that were there before.

Real writes to a real folder; the store records its flushes (see ``RecordingStore``). Two
writes interleave deterministically: the first is held inside its file flush, after it
created the folders and before it flushed their names.
"""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from node.storage.files import TEMPORARY_SUFFIX
from tests.support.storage import RecordingStore

LEAF = "abcd"  # the two hashed folders every file of these tests lands in: ab/cd
WAIT = 30  # s: a bound on waiting for the other thread, never reached when the code is right


def file_uuid(number: int) -> str:
    return f"{LEAF}{number:04x}-0000-4000-8000-000000000000"


def folders_flushed(store: RecordingStore, start: int = 0) -> list[str]:
    return [path for kind, path, _ in store.flushes[start:] if kind == "folder"]


def test_folders_created_by_the_write_are_flushed_once(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "storage")
    root = store.root
    store.flushes.clear()  # the flushes of the storage area's creation
    store.write(b"first", file_uuid(1))
    assert folders_flushed(store) == [str(root / "ab" / "cd"), str(root / "ab"), str(root)]
    before = len(store.flushes)
    store.write(b"second", file_uuid(2))
    # Both folders existed, their names flushed by the first write: only the new file's folder.
    assert [kind for kind, _, _ in store.flushes[before:]] == ["file", "folder"]
    assert folders_flushed(store, before) == [str(root / "ab" / "cd")]


class HeldStore(RecordingStore):
    """Holds the flush of one chosen file until released, to interleave two writes."""

    def __init__(self, root: Path, held: str) -> None:
        super().__init__(root)
        self.held = held
        self.holding = threading.Event()
        self.release = threading.Event()

    def sync_file(self, fd: int, path: str) -> None:
        if path.endswith(self.held + TEMPORARY_SUFFIX):
            self.holding.set()
            assert self.release.wait(WAIT)
        super().sync_file(fd, path)


async def test_a_write_into_a_folder_still_being_created_flushes_its_name(tmp_path: Path) -> None:
    """The second write finds the folders there, but their creator has not flushed their names
    yet: it must flush them itself before it returns."""
    creator = file_uuid(1)
    store = HeldStore(tmp_path / "storage", held=creator)
    root = store.root
    store.flushes.clear()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, store.write, b"first", creator)
        assert await trio.to_thread.run_sync(store.holding.wait, WAIT)  # folders made, their names not flushed
        await trio.to_thread.run_sync(store.write, b"second", file_uuid(2))
        second = folders_flushed(store)
        store.release.set()
    assert second == [str(root / "ab" / "cd"), str(root / "ab"), str(root)]
    # The creator flushes them too once it goes on; a third write relies on that.
    before = len(store.flushes)
    store.write(b"third", file_uuid(3))
    assert folders_flushed(store, before) == [str(root / "ab" / "cd")]
