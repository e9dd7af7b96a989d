"""What the storage tests share: file stores that record or fail their flushes, a small tmpfs
to fill, a look at the files a node left, and the index as a power cut leaves it."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from node.storage.files import TEMPORARY_SUFFIX, FileStore

TINY_TMPFS = "2m"


class RecordingStore(FileStore):
    """A file store that records its flushes in order, each with what the disk held then.

    ("file", temporary path, whether the final name existed) and ("folder", path, the names in it).
    """

    def __init__(self, root: Path, **options: Any) -> None:
        self.flushes: list[tuple[str, str, object]] = []
        super().__init__(root, **options)

    def sync_file(self, fd: int, path: str) -> None:
        self.flushes.append(("file", path, os.path.exists(path.removesuffix(TEMPORARY_SUFFIX))))
        super().sync_file(fd, path)

    def sync_folder(self, path: str) -> None:
        self.flushes.append(("folder", path, frozenset(os.listdir(path))))
        super().sync_folder(path)


class FailingFileFlush(FileStore):
    """A disk whose file flush reports an I/O error (what fsync says when the device fails)."""

    def sync_file(self, fd: int, path: str) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), path)


class FailingFolderFlush(FileStore):
    """A disk whose folder flush reports an I/O error: the file is then already renamed into place."""

    def sync_folder(self, path: str) -> None:
        if path.startswith(os.path.join(self.root, "")):  # a hashed folder; flushes at start-up pass
            raise OSError(errno.EIO, os.strerror(errno.EIO), path)
        super().sync_folder(path)


class CreatingStore(FileStore):
    """A file store without reserved names: every write creates its file, renames it into
    place and flushes its folders (what a store does once its stock of reserved names is used up)."""

    reserve_stock = 0


def stored_files(store: FileStore) -> list[Path]:
    """Every file under the hashed folders of a storage area, temporary ones included, but the
    empty files the store holds in reserve (see :meth:`FileStore.new_name`)."""
    found = [p for p in store.root.glob("*/*/*") if p.is_file()]
    reserved = store.reserved()  # after the listing: a name reserved meanwhile is still held back
    return sorted(p for p in found if p.name not in reserved)


@contextmanager
def small_tmpfs(folder: Path, size: str = TINY_TMPFS) -> Iterator[Path]:
    """A real, tiny file system mounted on ``folder`` for the test (skipped when mounting is not permitted)."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("mount/umount not found: cannot make a small file system to fill")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run([umount, str(folder)], check=True)


def fill_disk(folder: Path, leave: int = 0) -> Path:
    """Write a file in ``folder`` until its file system is full, then give back ``leave`` bytes."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def index_path(storage: Path) -> Path:
    return storage / "index.sqlite"


def snapshot(source: Path, target: Path) -> None:
    """The committed state of the index at this moment, as one consistent copy."""
    with closing(sqlite3.connect(source)) as db, closing(sqlite3.connect(target)) as copy:
        db.backup(copy)


def journaled(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT uuid FROM journaled_files")]


def restore(snapshot_path: Path, target: Path) -> None:
    """The index as the power cut left it: the snapshot, without the later write-ahead log."""
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    target.write_bytes(snapshot_path.read_bytes())
