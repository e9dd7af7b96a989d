"""Reserved names: empty files made under their final names, their folders flushed, before any
write is given one; a write into one then flushes only the file.

Real files in a real folder; the store records its flushes (see ``RecordingStore``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from pathlib import Path

import pytest

from node.storage.files import RESERVE_BATCH, TEMPORARY_SUFFIX
from node.storage.index import Index
from node.storage.sweep import sweep_storage
from tests.support.storage import RecordingStore, stored_files

WAIT = 30  # s: a bound on waiting for the reserving thread, never reached when the code is right


class OneBatchStore(RecordingStore):
    """Keeps one batch in stock: the reserving thread makes the next once all of it is used,
    so a test that uses fewer names sees no flush of that thread."""

    reserve_stock = RESERVE_BATCH


def test_a_reserved_name_is_flushed_before_it_is_handed_out(tmp_path: Path) -> None:
    store = OneBatchStore(tmp_path / "storage")
    store.flushes.clear()  # the flushes of the storage area's creation
    store.start_reserving()
    try:
        name = store.new_name()
        final = store.path_of(name)
        # One batch, one hashed folder: flushed once while holding every name, then the two above it (new).
        assert [(kind, path) for kind, path, _ in store.flushes] == [
            ("folder", str(final.parent)),
            ("folder", str(final.parent.parent)),
            ("folder", str(store.root)),
        ]
        batch = store.flushes[0][2]
        assert isinstance(batch, frozenset) and name in batch and len(batch) == RESERVE_BATCH
        assert final.read_bytes() == b"" and name in batch - store.reserved()  # handed out: no longer reserved
        before = len(store.flushes)
        assert store.write(b"payload", name) == (name, len(b"payload"))
        # Only the file's own flush, under its final name: no temporary file, no rename, no folder flush.
        assert store.flushes[before:] == [("file", str(final), True)]
        assert final.read_bytes() == b"payload"
        assert not final.with_name(final.name + TEMPORARY_SUFFIX).exists()
    finally:
        store.close()
    assert stored_files(store) == [final]
    assert [p for p in store.root.glob("*/*/*") if p.is_file()] == [final]  # close removed the unused ones


def test_a_reserved_file_gone_is_created_again(tmp_path: Path) -> None:
    store = OneBatchStore(tmp_path / "storage")
    store.start_reserving()
    try:
        name = store.new_name()
        store.path_of(name).unlink()  # whatever removed it, the write still lands durably
        before = len(store.flushes)
        store.write(b"payload", name)
        assert [kind for kind, _, _ in store.flushes[before:]] == ["file", "folder"]
        assert store.read(name) == b"payload"
    finally:
        store.close()


class BatchWatcher(OneBatchStore):
    """Tells when the reserving thread has flushed ``batches`` batches of names."""

    batches = 2

    def __init__(self, root: Path) -> None:
        self.flushed_batches = 0
        self.enough = threading.Event()
        super().__init__(root)

    def sync_folder(self, path: str) -> None:
        super().sync_folder(path)
        if len(os.listdir(path)) >= RESERVE_BATCH and os.path.dirname(os.path.dirname(path)) == str(self.root):
            self.flushed_batches += 1
            if self.flushed_batches >= self.batches:
                self.enough.set()


def test_the_stock_is_kept_up_as_names_are_used(tmp_path: Path) -> None:
    store = BatchWatcher(tmp_path / "storage")
    store.start_reserving()  # the first batch, made at once
    try:
        used = [store.new_name() for _ in range(RESERVE_BATCH)]  # a batch's worth used: the thread makes another
        assert store.enough.wait(WAIT)
        assert len(store.reserved()) >= RESERVE_BATCH and not set(used) & store.reserved()
    finally:
        store.close()
    for name in used:  # handed out and never written: left for the caller to remove
        store.remove(name)
    assert stored_files(store) == []


class FailingFirstBatch(OneBatchStore):
    """A disk whose folder flushes fail until ``healed`` is set."""

    healed = False

    def sync_folder(self, path: str) -> None:
        if not self.healed and path.startswith(os.path.join(self.root, "")):
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)
        super().sync_folder(path)


def test_a_failed_batch_leaves_nothing_and_writes_create_their_files(tmp_path: Path) -> None:
    store = FailingFirstBatch(tmp_path / "storage")
    store.start_reserving()
    try:
        assert store.reserved() == frozenset() and stored_files(store) == []  # the batch was removed
        name = store.new_name()  # a fresh UUID: nothing is reserved
        store.healed = True
        store.write(b"payload", name)
        assert [path for kind, path, _ in store.flushes if kind == "file"] == [
            str(store.path_of(name)) + TEMPORARY_SUFFIX
        ]
        assert store.path_of(name).read_bytes() == b"payload"
    finally:
        store.close()


async def test_the_sweep_leaves_reserved_files_alone(tmp_path: Path, any_index: Index) -> None:
    """Even a sweep told to take files of any age: the reserved files are the store's own."""
    store = OneBatchStore(tmp_path / "storage")
    store.start_reserving()
    try:
        reserved = store.reserved()
        result = await sweep_storage(store, any_index, min_age=-60)
        assert (result.orphans, result.temporaries) == (0, 0)
        assert all(store.path_of(name).exists() for name in reserved)
    finally:
        store.close()


async def test_another_processs_sweep_and_a_fill_never_lose_the_instance(tmp_path: Path, any_index: Index) -> None:
    """Two stores on one storage area, as two processes sharing it: the second's sweep takes the
    first's old reserved files for orphans. One being filled is left alone; one swept before its
    fill is written anew by the fill. Either way the instance's bytes are where its name says."""
    owner = OneBatchStore(tmp_path / "storage")
    owner.start_reserving()
    sweeper = OneBatchStore(tmp_path / "storage")
    try:
        filling, swept = owner.new_name(), owner.new_name()
        for name in owner.reserved() | {filling, swept}:
            os.utime(owner.path_of(name), (1, 1))  # reserved long ago
        held = os.open(owner.path_of(filling), os.O_WRONLY)
        fcntl.flock(held, fcntl.LOCK_EX)  # the owner's fill under way
        try:
            result = await sweep_storage(sweeper, any_index)
        finally:
            os.close(held)
        assert owner.path_of(filling).exists() and not owner.path_of(swept).exists()
        assert result.orphans == len(owner.reserved()) + 1  # the idle stock and the swept name
        assert owner.write(b"filled", filling) == (filling, 6)
        assert owner.write(b"written anew", swept) == (swept, 12)
        assert owner.path_of(filling).read_bytes() == b"filled"
        assert owner.path_of(swept).read_bytes() == b"written anew"
    finally:
        sweeper.close()
        owner.close()


def test_a_reserved_file_unlinked_while_opened_is_written_anew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep of another process removed the file between its opening and its lock here."""
    store = OneBatchStore(tmp_path / "storage")
    store.start_reserving()
    try:
        name = store.new_name()
        path = store.path_of(name)
        real_flock = fcntl.flock

        def unlinked_first(fd: int, operation: int) -> None:
            os.unlink(path)  # what the other process did just before the lock was taken
            monkeypatch.setattr(fcntl, "flock", real_flock)
            real_flock(fd, operation)

        monkeypatch.setattr(fcntl, "flock", unlinked_first)
        assert store.write(b"payload", name) == (name, 7)
        assert path.read_bytes() == b"payload"
    finally:
        store.close()
