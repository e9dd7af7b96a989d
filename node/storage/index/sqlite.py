"""SQLite backend of the index, in WAL mode: one connection writes, on a dedicated thread or, for
stores and small writes, on the event loop while that thread is idle; a few others read, on
threads of their own or, for lookups by key, on the loop (see :mod:`.readers`); checkpoints run
on a thread and connection of their own."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from ...errors import ErrorCode, OrthancError, storage_full
from ...offload import offload, under_virtual_clock
from ..batch import Batcher
from ..files import flush_folder
from ..private import create_empty_file, make_folders
from ..thread import DedicatedThread, StartedCall, blocking_wait
from . import queries
from .base import (
    NewInstance,
    StoreResult,
)
from .dialect import SQLITE
from .job_leases import JOB_COLUMNS, JOB_INDEXES, MEMBERS_TABLE
from .readers import Readers, primary_code
from .schema import schema
from .sql_backend import SqlBackend

log = logging.getLogger(__name__)
T = TypeVar("T")
# A store waiting in the batch: the instance, whether it may replace one stored, and what
# blocks until its file is durable (see Index.store).
_StoreItem = tuple[NewInstance, bool, Callable[[], object] | None]
# Commits between two checkpoints of the write-ahead log (see SqliteIndex._count_transaction): about
# SQLite's own 1,000 pages, at some 15 pages per store.
CHECKPOINT_COMMITS = 64
# Stores in one group committed on the event loop: their rows take the loop some 0.1-0.3 ms each.
GROUP_STORES = 16
BUSY_TIMEOUT_SECONDS = 10.0  # longest wait for the write lock another process holds
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes of write-ahead log kept after a checkpoint
# How often a transaction asks again for the write lock another process holds. SQLite's own
# busy handler sleeps 1, 2, 5, 10 ms and more between tries, far longer than a member holds
# the lock for one group commit: polling this often gave two writing processes a third
# more commits per second than the handler.
WRITE_LOCK_POLL_SECONDS = 0.0002
# The names of files handed out to stores whose commits may skip the flush of the write-ahead
# log (see SqliteIndex.enable_file_recovery). A name leaves the table in its store's commit.
_JOURNALED_NAMES = "CREATE TABLE IF NOT EXISTS journaled_files (uuid TEXT PRIMARY KEY) WITHOUT ROWID"
# Threads that read, each on its connection, beside the writer: enough that a read rarely
# waits for another on a machine of 2 cores, where more would only take turns for the GIL.
READER_THREADS = 2


def _orthanc_error(error: sqlite3.Error) -> OrthancError:
    """What the client learns of an SQLite failure; SQLite's own words go to the log."""
    if primary_code(error) == sqlite3.SQLITE_FULL:
        log.error("index: disk full: %s", error)
        return storage_full()
    log.error("index: %s", error, exc_info=error)
    return OrthancError(ErrorCode.DATABASE)


def _translated(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except sqlite3.Error as error:
        raise _orthanc_error(error) from error


class SqliteIndex(SqlBackend):
    """``durable`` (Orthanc's SyncStorageArea) makes every commit flush the write-ahead log
    before it returns (``synchronous=FULL``); otherwise a power cut may lose the last commits,
    though never corrupt the database.

    With :meth:`enable_file_recovery`, a store whose file has a journaled name commits
    without that flush: a power cut may then lose its index entry, but not its file, which
    is durable before the commit and found again at the next start through its name
    (:meth:`journaled_names`). A store costs one flush (its file's) instead of two.

    ``shared``: other processes (members) write to the index too, and wait for its write lock
    meanwhile; a store's file is then durable before its transaction takes the lock (see
    :meth:`store`).
    """

    # Alone, the writer's thread may run a deferred write under the write lock, which no other
    # process waits for; with ``shared``, every write ends before the lock is taken.
    takes_deferred_writes = True

    def __init__(self, directory: Path, *, durable: bool = True, shared: bool = False) -> None:
        make_folders(directory)
        self._thread = DedicatedThread("sqlite-index")
        path = directory / "index.sqlite"
        self._db: sqlite3.Connection = self._thread.run_blocking(self._open, path, durable)
        readers = [_open_reader(path) for _ in range(READER_THREADS)]
        self._readers = Readers("sqlite-reader", readers, _open_reader(path, wait=False), _orthanc_error)
        self._store_batcher = Batcher(self._thread, self._store_batch, self._store_transaction)
        self._durable = durable
        self._shared = shared
        self._log_path = f"{path}-wal"
        self._log_fd: int | None = None  # the write-ahead log, flushed by hand (see enable_file_recovery)
        self._path = path
        # With file recovery: checkpoints, on a thread and connection of their own (see _count_transaction).
        self._checkpoints: tuple[DedicatedThread, sqlite3.Connection] | None = None
        self._unjournaled = False  # the store batch under way has a store whose name was not journaled
        self._light = False  # the connection's commits skip the flush (synchronous=NORMAL)
        self._transactions = 0  # with file recovery, for the checkpoints (see _count_transaction)
        self._turn_here = trio.Lock()  # the writes on the event loop, one after the other (see store)
        self._loop_stores: list[_LoopStore] = []  # queued for the next group on the loop (see store)
        self._committing = False  # a group is being committed on the loop: the next one waits for it

    @staticmethod
    def _open(path: Path, durable: bool) -> sqlite3.Connection:
        create_empty_file(path)  # private; SQLite gives its -wal and -shm files the same mode
        db = _connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        db.executescript(schema(SQLITE))
        db.execute(_JOURNALED_NAMES)
        _migrate_jobs(db)
        # From now on every write polls for the lock itself (see _Transaction): SQLite's own
        # handler would only lengthen the waits.
        db.execute("PRAGMA busy_timeout=0")
        if durable:  # the names of the database and of its write-ahead log, just created
            flush_folder(path.parent)
        return db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the writer's thread, SQLite's errors turned into Orthanc's."""
        return await self._thread.run(_translated, fn, *args)

    async def close(self) -> None:
        self._readers.close()
        await self._thread.run(self._db.close)
        self._thread.stop()
        if self._checkpoints is not None:
            thread, db = self._checkpoints
            thread.stop()
            db.close()
        if self._log_fd is not None:
            os.close(self._log_fd)

    # -- file recovery ---------------------------------------------------------
    def enable_file_recovery(self) -> Callable[[list[str]], None] | None:
        """See the class. The journal is a blocking call, from any thread but the event loop's,
        that records names durably before they are handed out; None without ``durable``, where
        no commit is flushed anyway. Other processes may write to the index with their own
        journals, as long as the recovery runs while none serves: it takes every journaled name
        for a crashed run's."""
        if self._log_fd is not None:
            return self._journal
        if not self._durable:
            return None
        self._log_fd = os.open(self._log_path, os.O_RDONLY | os.O_CLOEXEC)
        self._thread.run_blocking(self._db.execute, "PRAGMA wal_autocheckpoint=0")  # see _count_transaction
        self._checkpoints = (DedicatedThread("sqlite-checkpoint"), _connect(self._path))
        return self._journal

    def _journal(self, names: list[str]) -> None:
        """Names recorded by a light commit on the writer's thread, then flushed from the caller's:
        the writer's thread stores meanwhile, where a full commit would keep it for the flush."""
        self._thread.run_blocking(_translated, self._in_light_transaction, _add_journaled, names)
        assert self._log_fd is not None  # handed out by enable_file_recovery, which opened it
        try:
            flush_log(self._log_fd)
        except OSError as error:
            raise _log_flush_failure(error) from error

    async def journaled_names(self) -> list[str]:
        """Stores a crash may have lost, and names never written."""
        return await self._read(_journaled)

    async def forget_journaled_names(self) -> None:
        await self._write(_forget_journaled)

    # -- helpers (run on the writer's thread) --------------------------------
    @functools.cached_property
    def _sql(self) -> queries.Sql:
        return queries.Sql(self._db, SQLITE)

    def _tx(self, *, light: bool = False, wait: bool = True) -> _Transaction:
        """A transaction, committed ``light``: without flushing the write-ahead log when file
        recovery is on (else as every commit of this index); ``wait`` false: _WriteLockBusy at
        once when another process holds the write lock."""
        if self._log_fd is not None:
            if self._light != light:  # outside any transaction, as SQLite wants
                self._db.execute(f"PRAGMA synchronous={'NORMAL' if light else 'FULL'}")
                self._light = light
            self._count_transaction()
        return _Transaction(self._db, wait=wait)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._readers.run(fn, *args)

    async def _lookup(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._readers.run_here(fn, *args)

    async def _lookup_one(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._readers.run_here(fn, *args, single=True)

    async def _autocommit(self, fn: Callable[..., T], *args: Any) -> T:
        """In a transaction all the same: it is what waits for the lock other processes hold."""
        return await self._write(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._in_transaction, fn, *args)

    def _in_transaction(self, fn: Callable[..., T], *args: Any, light: bool = False) -> T:
        with self._tx(light=light):
            return fn(self._sql, *args)

    def _in_light_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`_in_transaction`, committed without flushing the log (see :meth:`_tx`)."""
        return self._in_transaction(fn, *args, light=True)

    async def _write_unflushed(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._write_here(fn, *args, flush=False)

    async def _write_here(self, fn: Callable[..., T], *args: Any, flush: bool = True) -> T:
        """``fn(sql, *args)`` in a transaction on the event loop, when the writer's thread is idle
        and file recovery lets the commit skip the flush of the log; the flush follows in a
        worker, the writer's thread free again meanwhile. Else on the writer's thread.
        Without ``flush``, neither commit flushes the log (see SqlBackend._write_unflushed).

        For a write of a few rows that must not keep the stores waiting: run on the writer's
        thread, its statements take turns at the interpreter with a busy event loop, and the
        stores that arrive meanwhile wait for it in a batch. Not for a write whose SQL takes
        long: the loop runs it."""
        log_fd = self._log_fd
        if log_fd is None or under_virtual_clock():
            return await self._write(fn, *args)
        elsewhere = self._write if flush else functools.partial(self._run, self._in_light_transaction)
        done: outcome.Value[T] | None = None
        async with self._loop_turn() as here:
            if here:
                try:
                    with self._tx(light=True, wait=False):
                        done = outcome.Value(fn(self._sql, *args))
                except _WriteLockBusy:  # another process writes: the writer's thread waits for it, not the loop
                    pass
                except sqlite3.Error as error:
                    raise _orthanc_error(error) from error
        if done is None:
            return await elsewhere(fn, *args)
        if flush:
            try:
                await offload(flush_log, log_fd)
            except OSError as error:
                raise _log_flush_failure(error) from error
        return done.unwrap()

    @contextlib.asynccontextmanager
    async def _loop_turn(self) -> AsyncIterator[bool]:
        """The event loop's turn at the writer's connection, after the loop's writes before it:
        True when taken (the writer's thread held idle meanwhile), False when that thread is at
        work (the write goes there, once the turn is left)."""
        async with self._turn_here:
            if not self._thread.try_hold():
                yield False
                return
            try:
                yield True
            finally:
                self._thread.release()

    async def save_jobs(self, changed: dict[str, str], removed: Collection[str], *, clear: bool = False) -> None:
        await self._write_here(queries.save_jobs, changed, removed, clear)

    # -- ingest ------------------------------------------------------------
    async def store(
        self, instance: NewInstance, *, overwrite: bool, written: StartedCall[Any] | None = None
    ) -> StoreResult:
        """With file recovery, stores are committed here, on the event loop, in groups: the stores
        that arrive while one group is under way form the next, one transaction for all (see
        :meth:`_commit_here`). Without, or when the writer's thread is at work (a checkpoint,
        another write) or another process holds the write lock, a store joins the next batch on
        the writer's thread. Not cancellable, like a batch: a queued store always completes.

        On the loop, a group's statements run while the loop holds the interpreter anyway; on
        the writer's thread, a batch's statements took turns at it with a busy loop, several
        times as long. A group shares its pages of the write-ahead log, where a transaction per
        store wrote some 16 pages each.

        With ``shared``, the files of a group, or a store's file on its way to the writer's
        thread, are durable before the transaction begins: alone, a store's rows overlap its
        file's flush; with members, a flush under the write lock held back the commits of all
        the others (a third of the stores of two members went to the writer's thread, the lock
        busy). Two members ingesting tiny files over REST spent 8% less user CPU per store."""
        if self._log_fd is not None and not under_virtual_clock():
            pending = _LoopStore(instance, overwrite, written)
            self._loop_stores.append(pending)
            with trio.CancelScope(shield=True):
                if self._committing:  # taken into the next group: its file is written meanwhile
                    if written is not None:
                        written.start_deferred()
                    await pending.done.wait()
                if not pending.done.is_set() or pending.leads:
                    await self._commit_here()
            if pending.result is not None:
                return pending.result.unwrap()
        if self._shared and written is not None:
            await written.wait_ended()  # its outcome reaches the batch, which fails the store on an error
        return await self._store_batcher.submit((instance, overwrite, blocking_wait(written)))

    async def _commit_here(self) -> None:
        """Commit the stores queued on the loop (GROUP_STORES at most) as one group; the first
        store still queued then commits the next group (each caller commits one group at most,
        so none waits on for the others). A group whose transaction cannot begin here goes back
        to its stores, for the writer's thread."""
        self._committing = True
        group, self._loop_stores = self._loop_stores[:GROUP_STORES], self._loop_stores[GROUP_STORES:]
        try:
            await self._start_files(group)
            async with self._loop_turn() as here:
                if here:
                    await self._group_here(group)
        finally:
            for pending in group:
                pending.done.set()
            if self._loop_stores:
                following = self._loop_stores[0]
                following.leads = True
                following.done.set()
            else:
                self._committing = False

    async def _start_files(self, group: list[_LoopStore]) -> None:
        """Start the deferred writes of ``group``; with ``shared``, wait until they all ended,
        before the group takes the writer's connection and the write lock (see store)."""
        for pending in group:
            if pending.written is not None:
                pending.written.start_deferred()
        if self._shared:
            for pending in group:
                if pending.written is not None:
                    await pending.written.wait_ended()

    async def _group_here(self, group: list[_LoopStore]) -> None:
        """One transaction for ``group``, each store in a savepoint of its own, committed (without
        a flush) once every file is durable; their files were started before. Each store gets
        its outcome; none, when another process holds the write lock."""
        self._unjournaled = False
        outcomes: list[outcome.Outcome[StoreResult]] = []
        try:
            with self._tx(light=True, wait=False):
                for pending in group:
                    outcomes.append(await outcome.acapture(self._store_waiting, pending))
            if self._unjournaled and self._log_fd is not None:
                await offload(flush_log, self._log_fd)
        except _WriteLockBusy:
            return
        except sqlite3.Error as error:  # BEGIN or COMMIT failed: every store of the group fails
            outcomes = [outcome.Error(_orthanc_error(error))] * len(group)
        except OSError as error:
            outcomes = [outcome.Error(_log_flush_failure(error))] * len(group)
        for pending, result in zip(group, outcomes, strict=True):
            pending.result = result

    async def _store_waiting(self, pending: _LoopStore) -> StoreResult:
        """One store of a group: its rows, then the wait for its file, in its savepoint."""
        with self._savepoint():
            result = self._rows(pending.new, pending.overwrite)
            if pending.written is not None and not result.already_stored:  # a duplicate's file is not needed
                await pending.written.wait()  # its failure undoes the rows and reaches the caller
        return result

    def _count_transaction(self) -> None:
        """With file recovery the writer does not checkpoint the write-ahead log at its commits
        (a checkpoint flushes the database, too long for the event loop): a thread of its own
        does, after every CHECKPOINT_COMMITS transactions, on a connection of its own. A passive
        checkpoint does not keep the writer from writing, so neither does that thread: on the
        writer's thread it held back every store that came meanwhile."""
        self._transactions += 1
        if self._transactions % CHECKPOINT_COMMITS == 0 and self._checkpoints is not None:
            thread, db = self._checkpoints
            thread.post(_checkpoint, db)

    @contextlib.contextmanager
    def _store_transaction(self) -> Iterator[None]:
        """The transaction of a batch of stores, opened before the batch is taken (see Batcher):
        the stores arriving while another member holds the write lock join this batch.

        With file recovery, the batch commits without flushing the write-ahead log, then
        flushes it by hand unless every store of the batch had a journaled name (the safety
        level cannot change inside a transaction, when the batch is known)."""
        self._unjournaled = False
        try:
            with self._tx(light=True):
                yield
            if self._unjournaled and self._log_fd is not None:
                flush_log(self._log_fd)
        except sqlite3.Error as error:  # BEGIN or COMMIT failed: every store of the batch fails
            raise _orthanc_error(error) from error
        except OSError as error:
            raise _log_flush_failure(error) from error

    def _store_batch(self, items: list[_StoreItem]) -> list[outcome.Outcome[StoreResult]]:
        """Group commit, in the batch's transaction, committed once the files of all the stores
        are durable: each store in a savepoint of its own, so that a failing one is undone alone."""
        return [outcome.capture(self._store, new, overwrite, written) for new, overwrite, written in items]

    def _store(self, new: NewInstance, overwrite: bool, written: Callable[[], object] | None) -> StoreResult:
        """One store of a batch: its rows, then the wait for its file, in its savepoint."""
        with self._savepoint():
            result = self._rows(new, overwrite)
            if written is not None and not result.already_stored:  # a duplicate's file is not needed
                written()  # its failure undoes the rows and reaches the caller
        return result

    def _rows(self, new: NewInstance, overwrite: bool) -> StoreResult:
        if self._log_fd is not None and not _take_journaled(self._db, new.attachment.uuid):
            self._unjournaled = True
        return queries.insert_instance(self._sql, new, overwrite)

    @contextlib.contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A store's savepoint in the transaction of its batch or group: a failure undoes that
        store alone, and reaches its caller only."""
        if not self._db.in_transaction:
            # An earlier store's failure made SQLite roll the batch's transaction back: a savepoint
            # now would begin and commit a transaction of its own, outside the batch's.
            log.error("index: the batch's transaction was rolled back; store refused")
            raise OrthancError(ErrorCode.DATABASE)
        self._db.execute("SAVEPOINT store")
        try:
            yield
        except BaseException as error:
            if self._db.in_transaction:  # SQLite may have rolled the whole transaction back (a full disk)
                self._db.execute("ROLLBACK TO store")
                self._db.execute("RELEASE store")
            if isinstance(error, sqlite3.Error):
                raise _orthanc_error(error) from error
            raise
        self._db.execute("RELEASE store")

    # -- changes -----------------------------------------------------------
    async def last_seq(self) -> int:
        return await self._read(_last_seq)


def _log_flush_failure(error: OSError) -> OrthancError:
    log.error("index: cannot flush the write-ahead log: %s", error)
    return OrthancError(ErrorCode.DATABASE)


def flush_log(fd: int) -> None:
    """Flush the write-ahead log open as ``fd``: what synchronous=FULL does after a commit."""
    os.fdatasync(fd)


def _add_journaled(sql: queries.Sql, names: list[str]) -> None:
    """One statement for all: the writer's thread takes the interpreter back once, not once a row."""
    sql.run(f"INSERT INTO journaled_files(uuid) VALUES {','.join(['(?)'] * len(names))}", names)


def _take_journaled(db: sqlite3.Connection, name: str) -> bool:
    """Whether ``name`` was journaled; it is not any more (in the store's transaction)."""
    return db.execute("DELETE FROM journaled_files WHERE uuid = ?", (name,)).rowcount > 0


def _journaled(sql: queries.Sql) -> list[str]:
    return [row[0] for row in sql.rows("SELECT uuid FROM journaled_files")]


def _forget_journaled(sql: queries.Sql) -> None:
    sql.run("DELETE FROM journaled_files")


def _checkpoint(db: sqlite3.Connection) -> None:
    try:  # what readers still use stays: a later checkpoint copies it
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as error:  # the log grows meanwhile; the next one tries again
        log.warning("index: checkpoint failed: %s", error)


def _last_seq(sql: queries.Sql) -> int:
    row = sql.row("SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
    return int(row[0]) if row else 0


def _connect(path: Path, timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite3.Connection:
    """A connection of any thread, each statement its own transaction unless one is begun.
    Other processes (members) may hold the write lock: it waits for it ``timeout`` seconds before failing."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)


def _open_reader(path: Path, *, wait: bool = True) -> sqlite3.Connection:
    """A connection of :class:`Readers`, to the database the writer opened: any write on it
    fails; without ``wait``, one that finds the database busy fails at once (the event loop's)."""
    db = _connect(path, BUSY_TIMEOUT_SECONDS if wait else 0.0)
    db.execute("PRAGMA query_only=ON")
    return db


def _migrate_jobs(db: sqlite3.Connection) -> None:
    """Give a jobs table made before the cluster columns its missing ones, their indexes, and the members table."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name, definition in JOB_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")
    if "state" not in present:
        queries.adopt_saved_jobs(queries.Sql(db, SQLITE))
    for statement in (*JOB_INDEXES, MEMBERS_TABLE):
        db.execute(statement)


@dataclasses.dataclass(eq=False)
class _LoopStore:
    """A store queued for a group committed on the event loop (see SqliteIndex.store)."""

    new: NewInstance
    overwrite: bool
    written: StartedCall[Any] | None
    done: trio.Event = dataclasses.field(default_factory=trio.Event)
    leads: bool = False  # it commits the next group
    result: outcome.Outcome[StoreResult] | None = None  # none, once done: for the writer's thread


class _WriteLockBusy(Exception):
    """Another process holds the write lock, and the transaction was not to wait for it."""


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception, a failed COMMIT included.

    A COMMIT that fails (a full disk) may leave the transaction open; rolling it back is
    what lets the next one begin once the disk has room again.
    """

    def __init__(self, db: sqlite3.Connection, *, wait: bool = True) -> None:
        self._db = db
        self._wait = wait

    def __enter__(self) -> None:
        """Take the write lock, polling for it while another process holds it (see
        WRITE_LOCK_POLL_SECONDS), or raising _WriteLockBusy without ``wait``."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if primary_code(error) != sqlite3.SQLITE_BUSY:
                    raise
                if not self._wait:
                    raise _WriteLockBusy from error
                if time.monotonic() > deadline:
                    raise
            time.sleep(WRITE_LOCK_POLL_SECONDS)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may have rolled back already
            self._db.execute("ROLLBACK")
