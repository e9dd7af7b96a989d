"""DICOM files under two-level hashed folders, written atomically and, by default, durably."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ErrorCode, OrthancError, storage_full
from ..metrics import Metrics
from .private import create_file, make_folders

log = logging.getLogger(__name__)

TEMPORARY_SUFFIX = ".tmp"
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # a quota reached is a full disk for this account
_HEX = frozenset("0123456789abcdef")
# A reserved file is opened as it is: no new name, and never through a link planted in its place.
_RESERVED_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC
READ_CHUNK = 1 << 20  # bytes read at a time from a file that turned out longer than its first read
# Names reserved at once, all in one hashed folder, so that one flush of that folder covers them all.
RESERVE_BATCH = 64


def write_failure(error: OSError, path: str | os.PathLike[str]) -> OrthancError:
    """The client's error for a failed write; what failed, and where, goes to the log only."""
    if error.errno in _DISK_FULL:
        log.error("disk full, cannot write %s: %s", path, error)
        return storage_full()
    log.error("cannot write %s: %s", path, error)
    return OrthancError(ErrorCode.CANNOT_WRITE_FILE)


def flush_folder(path: str | os.PathLike[str]) -> None:
    """Flush a folder to the disk, so that the names created in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class FolderScan:
    """The old entries of one top-level folder of the storage area (see :meth:`FileStore.scan`)."""

    files: list[str] = field(default_factory=list)  # UUIDs of stored files
    temporaries: list[str] = field(default_factory=list)  # paths of half-written files


class FileStore:
    """Files named by UUID under ``root/ab/cd/<uuid>`` like Orthanc's storage area.

    A write goes to a temporary name first and is renamed into place, so a crash never
    leaves a half-written file under a live name. With ``sync`` (Orthanc's
    ``SyncStorageArea``) :meth:`write` returns only once the file would survive a power
    cut: its bytes flushed before the rename, then the folder holding the new name
    flushed. A folder's own name is flushed (in the folder above) by the write that
    created it; a concurrent write relying on that folder before its creator is done
    flushes it too, so no write returns while a folder it needs could still vanish. The
    index commits after that, so it never points at a file that a crash could take away.

    Reserved names make that one flush instead of three or four (:meth:`start_reserving`,
    with ``sync``): a thread keeps a stock of empty files created under their final
    names, whose folders it has flushed, so their names are on the disk already. A
    write given such a name (:meth:`new_name`) fills the file and flushes it, and that is
    all: no rename, no folder flush. A crash leaves a reserved file unindexed, like any
    file written but not indexed yet: the start-up sweep takes it, unless its name was
    journaled (:attr:`journal`) and the start-up recovery indexes it. Each batch of names
    shares one hashed folder (the UUIDs of a batch start alike), so one folder flush
    covers the batch. When the stock is empty, a write creates its file as above.

    :meth:`sync_file` and :meth:`sync_folder` are the two flush primitives, and the place
    for a subclass to instrument or replace them (the durability tests record through
    them the order of flushes and renames). Writes, reads and removals are timed here,
    where the work happens, for Orthanc's storage metrics.
    """

    reserve_stock = 4 * RESERVE_BATCH  # reserved names kept ready; 0: none (every write creates its file)

    def __init__(
        self, root: Path, *, compress: bool = False, sync: bool = True, metrics: Metrics | None = None
    ) -> None:
        self.root = root
        self._root_text = str(root)
        self.compress = compress
        self.sync = sync
        self.metrics = metrics or Metrics(enabled=False)
        # Hashed folders that writes in progress are creating (count of writes): their names
        # may not be on the disk yet. A write leaves them only once it has flushed them.
        self._being_created: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Reserved names: ready (durable, empty), being made, and handed out but not written yet.
        self._stock: deque[str] = deque()
        self._reserving: set[str] = set()
        self._handed_out: set[str] = set()
        self._refill = threading.Condition(self._lock)  # wakes the thread that keeps the stock up
        self._refiller: threading.Thread | None = None
        self._refill_paused = False  # a batch failed: no more until a write shows the disk works
        self._closing = False
        # Records a batch of reserved names durably before they are handed out (blocking, from
        # the reserving thread), for the run after a crash to find the files written under them.
        # Set before start_reserving; see SqliteIndex.enable_file_recovery.
        self.journal: Callable[[list[str]], None] | None = None
        for created in make_folders(root):
            if sync:
                self.sync_folder(os.path.dirname(created))

    def path_of(self, file_uuid: str) -> Path:
        return self.root / file_uuid[0:2] / file_uuid[2:4] / file_uuid

    # -- flush primitives ------------------------------------------------------------

    def sync_file(self, fd: int, path: str) -> None:
        """Flush the bytes written to ``fd`` (the open file ``path``) to the disk.

        fdatasync is enough: it also flushes the size of a file just written, all that
        reading it back needs; only its timestamps may be older after a crash.
        """
        os.fdatasync(fd)

    def sync_folder(self, path: str) -> None:
        """Flush a folder: see :func:`flush_folder`."""
        flush_folder(path)

    # -- writing ---------------------------------------------------------------------

    def write(
        self,
        data: bytes,
        file_uuid: str | None = None,
        flushing: Callable[[], None] | None = None,
        *,
        compress: bool | None = None,
    ) -> tuple[str, int]:
        """Store bytes under ``file_uuid`` (by default a new UUID); return it and the stored size.
        ``compress`` overrides StorageCompression for this file.

        Blocking: run it in a worker thread, several at once if need be: concurrent
        flushes share the file system's journal commits, where flushing them one after the
        other from a single thread costs more per file. ``flushing`` is called just before
        the file is flushed (with ``sync`` only): from there on the write mostly waits for
        the disk. A failure removes whatever this write created and raises an
        :class:`OrthancError` (507 when the disk is full).
        """
        with self.metrics.timer("orthanc_storage_create_duration_ms"):
            file_uuid = file_uuid or self.new_name()
            folder = os.path.join(self.root, file_uuid[0:2], file_uuid[2:4])
            path = os.path.join(folder, file_uuid)
            payload = zlib.compress(data) if (self.compress if compress is None else compress) else data
            try:
                if not self._fill_reserved(file_uuid, path, payload, flushing):
                    self._write(folder, path, payload, flushing)
            except OSError as error:
                raise write_failure(error, path) from error
            return file_uuid, len(payload)

    def _fill_reserved(self, file_uuid: str, path: str, payload: bytes, flushing: Callable[[], None] | None) -> bool:
        """Write into the reserved file ``file_uuid`` and flush it; False when the name is not a
        reserved one (or its file is gone), for :meth:`_write` to create the file."""
        with self._lock:
            if file_uuid not in self._handed_out:
                return False
            self._handed_out.discard(file_uuid)
        try:
            fd = os.open(path, _RESERVED_FLAGS)
        except FileNotFoundError:
            return False
        # The sweep of another process sharing the storage may take an old reserved file for an
        # orphan: it removes one only while holding its lock, after checking it is still old.
        # Once the lock is held here and the file still has its name, the file is this store's.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            return False
        try:
            self._fill(fd, path, payload, flushing)
        except BaseException:
            _unlink_quietly(path)
            raise
        return True

    def _fill(self, fd: int, path: str, payload: bytes, flushing: Callable[[], None] | None) -> None:
        """Write ``payload`` to the open file ``fd`` (at ``path``), flush it when durability is on
        (``flushing`` told first), and close it."""
        try:
            self._write_all(fd, payload)
            if self.sync:
                if flushing is not None:
                    flushing()
                self.sync_file(fd, path)
        finally:
            os.close(fd)

    def _write(self, folder: str, path: str, payload: bytes, flushing: Callable[[], None] | None) -> None:
        try:
            fd = create_file(path + TEMPORARY_SUFFIX)
        except FileNotFoundError:  # the first file of its folder: plain strings and no stat before, on the hot path
            self._write_creating(folder, path, payload, flushing)
            return
        self._place(fd, folder, path, payload, flushing)

    def _write_creating(self, folder: str, path: str, payload: bytes, flushing: Callable[[], None] | None) -> None:
        """:meth:`_write` when the folder may be missing: create it, and flush what was created."""
        hashed = (os.path.dirname(folder), folder)
        self._count_creating(hashed, 1)
        made = make_folders(folder)  # absolute paths
        created = [name for name in hashed if os.path.abspath(name) in made]
        fd = create_file(path + TEMPORARY_SUFFIX)
        self._place(fd, folder, path, payload, flushing, created, own=1)
        # Only now are the names flushed. After a failure they may not be: the folders then
        # stay counted, and every later write there flushes their names itself.
        self._count_creating(hashed, -1)

    def _count_creating(self, folders: tuple[str, ...], step: int) -> None:
        with self._lock:
            for folder in folders:
                self._being_created[folder] += step
                if self._being_created[folder] <= 0:
                    del self._being_created[folder]

    def _place(
        self,
        fd: int,
        folder: str,
        path: str,
        payload: bytes,
        flushing: Callable[[], None] | None,
        created: Sequence[str] = (),
        own: int = 0,
    ) -> None:
        """Write ``payload`` to the open temporary file ``fd``, flush it, rename it to ``path``,
        then flush the folders it needs (``own``: this write's count in ``_being_created``)."""
        temporary = path + TEMPORARY_SUFFIX
        placed = False
        try:
            self._fill(fd, temporary, payload, flushing)
            os.replace(temporary, path)
            placed = True
            if self.sync:
                self.sync_folder(folder)
                self._sync_new_folders(folder, created, own)
        except BaseException:
            _unlink_quietly(path if placed else temporary)
            raise
        if self._refill_paused:  # this write reached the disk: so may a batch of reserved names
            with self._lock:
                self._refill_paused = False
                self._refill.notify()

    @staticmethod
    def _write_all(fd: int, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]

    def _sync_new_folders(self, folder: str, created: Sequence[str], own: int) -> None:
        """Flush the names of the hashed folders above the file that this write created, or
        that a write still running is creating (it may not have flushed them yet).

        A folder that existed before needs nothing: its creator flushed its name.
        """
        parent = os.path.dirname(folder)
        with self._lock:
            new_folder = folder in created or self._being_created[folder] > own
            new_parent = parent in created or self._being_created[parent] > own
        if new_folder:
            self.sync_folder(parent)
        if new_parent:
            self.sync_folder(os.path.dirname(parent))

    # -- reserved names ----------------------------------------------------------------

    def start_reserving(self) -> None:
        """Make a first batch of reserved names (blocking), then keep the stock up from a
        thread of its own until :meth:`close`. Without ``sync`` there is nothing to save."""
        if not self.sync or self.reserve_stock <= 0 or self._refiller is not None:
            return
        self._reserve_batch()
        self._refiller = threading.Thread(target=self._keep_stock, name="storage-names", daemon=True)
        self._refiller.start()

    def close(self) -> None:
        """Stop reserving and remove the reserved files no write took (blocking)."""
        with self._lock:
            self._closing = True
            self._refill.notify()
        if self._refiller is not None:
            self._refiller.join()
        with self._lock:
            unused, self._stock = list(self._stock), deque()
        for name in unused:
            _unlink_quietly(self.path_of(name))

    def new_name(self) -> str:
        """The name for a new file: a reserved one while the stock lasts, else a fresh UUID.
        A reserved name handed out is written (:meth:`write`) or removed (:meth:`remove`)."""
        with self._lock:
            if not self._stock:
                return str(uuid.uuid4())
            name = self._stock.popleft()
            self._handed_out.add(name)
            if len(self._stock) <= self.reserve_stock - RESERVE_BATCH:
                self._refill.notify()
            return name

    def reserved(self) -> frozenset[str]:
        """The names reserved and not handed out, those being made included: empty files."""
        with self._lock:
            return frozenset(self._stock) | self._reserving

    def _keep_stock(self) -> None:
        """The reserving thread: a batch whenever a batch's worth of names was used."""
        while True:
            with self._lock:
                while not self._closing and (
                    self._refill_paused or len(self._stock) > self.reserve_stock - RESERVE_BATCH
                ):
                    self._refill.wait()
                if self._closing:
                    return
            self._reserve_batch()

    def _reserve_batch(self) -> None:
        """Create ``RESERVE_BATCH`` empty files in one hashed folder and flush their names.

        A failure removes them, logs why and pauses reserving until a write succeeds.
        """
        prefix = uuid.uuid4().hex[:4]
        names = [prefix + str(uuid.uuid4())[4:] for _ in range(RESERVE_BATCH)]
        with self._lock:
            self._reserving.update(names)
        folder = os.path.join(self.root, prefix[0:2], prefix[2:4])
        hashed = (os.path.dirname(folder), folder)
        made: list[str] = []
        self._count_creating(hashed, 1)
        try:
            made_folders = make_folders(folder)  # absolute paths
            created = [name for name in hashed if os.path.abspath(name) in made_folders]
            for name in names:
                os.close(create_file(os.path.join(folder, name)))
                made.append(name)
            if self.sync:
                self.sync_folder(folder)
                self._sync_new_folders(folder, created, own=1)
            if self.journal is not None:
                self.journal(names)
        except (OSError, OrthancError) as error:  # as for a failed write, the folders stay counted
            for name in made:
                _unlink_quietly(os.path.join(folder, name))
            with self._lock:
                self._reserving.difference_update(names)
                self._refill_paused = True
            log.warning(
                "cannot reserve file names in %s (new files are created one by one meanwhile): %s", folder, error
            )
            return
        self._count_creating(hashed, -1)
        with self._lock:
            self._reserving.difference_update(names)
            self._stock.extend(names)

    # -- reading and removing --------------------------------------------------------

    def read(self, file_uuid: str, compressed: bool = False) -> bytes:
        data = self.read_raw(file_uuid)
        return zlib.decompress(data) if compressed else data

    def open_raw(self, file_uuid: str) -> int:
        """A descriptor of the file as stored, open for reading, for the caller to close (the
        kernel can then send it without a copy). FileNotFoundError when it is missing."""
        with self.metrics.timer("orthanc_storage_read_duration_ms"):
            return self._open_raw(file_uuid)[0]

    def _open_raw(self, file_uuid: str) -> tuple[int, str]:
        # Plain system calls on a string path: a send reads one file per instance, and
        # pathlib's and the io module's layers cost several times the read of a small file.
        path = f"{self._root_text}/{file_uuid[0:2]}/{file_uuid[2:4]}/{file_uuid}"
        try:
            return os.open(path, _READ_FLAGS), path
        except FileNotFoundError:
            raise
        except OSError as error:
            raise _read_failure(path, error) from error

    def read_raw(self, file_uuid: str) -> bytes:
        """The file as stored. FileNotFoundError when it is missing (callers decide what that means)."""
        with self.metrics.timer("orthanc_storage_read_duration_ms"):
            fd, path = self._open_raw(file_uuid)
            try:
                return _read_all(fd)
            except OSError as error:
                raise _read_failure(path, error) from error
            finally:
                os.close(fd)

    def stored_md5(self, file_uuid: str) -> str:
        """The MD5 of the file as stored (compressed, with StorageCompression)."""
        return hashlib.md5(self.read_raw(file_uuid)).hexdigest()

    def remove(self, file_uuid: str) -> None:
        """Remove a file the index no longer points at; a failure is logged and left to the start-up sweep."""
        with self.metrics.timer("orthanc_storage_remove_duration_ms"):
            if self._handed_out:
                with self._lock:
                    self._handed_out.discard(file_uuid)
            _unlink_quietly(self.path_of(file_uuid))

    def remove_many(self, file_uuids: list[str]) -> None:
        for file_uuid in file_uuids:
            self.remove(file_uuid)

    # -- the start-up sweep (see storage/sweep.py) -------------------------------------

    def remove_orphans(self, file_uuids: list[str], modified_before: float) -> int:
        """Remove files the index does not know, each only if it is still unchanged since before
        ``modified_before`` once its lock is held: another process sharing the storage may be
        filling one it reserved long ago (see :meth:`_fill_reserved`). How many were removed."""
        removed = 0
        for file_uuid in file_uuids:
            path = self.path_of(file_uuid)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_mtime < modified_before:
                    _unlink_quietly(path)
                    removed += 1
            except BlockingIOError:  # being filled right now
                continue
            finally:
                os.close(fd)
        return removed

    def top_folders(self) -> list[str]:
        """The first level of hashed folders."""
        with os.scandir(self.root) as entries:
            return sorted(e.name for e in entries if _is_hash_folder(e.name) and e.is_dir(follow_symlinks=False))

    def scan(self, top: str, modified_before: float) -> FolderScan:
        """The stored and the half-written files under ``root/top`` last modified before ``modified_before``.

        Only names this store gives are listed: anything else in the storage area is left alone.
        """
        scan = FolderScan()
        with os.scandir(self.root / top) as folders:
            subfolders = [e for e in folders if _is_hash_folder(e.name) and e.is_dir(follow_symlinks=False)]
        for folder in subfolders:
            with os.scandir(folder.path) as entries:
                listed = list(entries)
            # Reserved files are the store's own, whatever their age. Asked after the listing: a
            # name is reserved before its file exists, so a listed reserved file is in this set.
            with self._lock:
                reserved = set(self._stock) | self._reserving | self._handed_out
            for entry in listed:
                stem = entry.name.removesuffix(TEMPORARY_SUFFIX)
                if stem[0:4] != top + folder.name or stem in reserved or not _is_uuid(stem):
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime >= modified_before:
                    continue
                if stem == entry.name:
                    scan.files.append(stem)
                else:
                    scan.temporaries.append(entry.path)
        return scan

    def remove_paths(self, paths: list[str]) -> None:
        for path in paths:
            _unlink_quietly(path)


def _read_all(fd: int) -> bytes:
    """Every byte of the open file ``fd``: one read for any file below the system's limit on one."""
    size = os.fstat(fd).st_size
    data = os.read(fd, size)
    if len(data) == size:
        return data
    chunks = [data]  # larger than one read may return, or changed meanwhile: read to its end
    while chunk := os.read(fd, READ_CHUNK):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_failure(path: str, error: OSError) -> OrthancError:
    log.error("cannot read %s: %s", path, error)
    return OrthancError(ErrorCode.INTERNAL_ERROR, "Cannot read from the storage area")


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:  # nothing points at it any more: the start-up sweep takes it later
        log.warning("cannot remove %s: %s", path, error)


def _is_hash_folder(name: str) -> bool:
    return len(name) == 2 and set(name) <= _HEX


def _is_uuid(name: str) -> bool:
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False
