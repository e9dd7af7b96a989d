"""PostgreSQL backend of the index: one database that node processes on several machines share.

psycopg's asynchronous mode needs asyncio, so its blocking API runs in worker threads, at most
one per pooled connection (a :class:`trio.CapacityLimiter` as large as the pool, so a thread
starts only when a connection is free and never holds a token of Trio's default limiter while
it waits). One call is one thread, one connection taken from the pool and one transaction,
committed when the call returns: no connection is held across an await, so no transaction
stays open while the event loop does something else.

A cancelled call asks the server to cancel its statement (from another thread, as psycopg
allows), its thread then ends with the statement's error, and the caller gets its pending
Cancelled. A connection a cancellation was sent to is closed, not handed to the next call.
``statement_timeout`` bounds any statement nobody cancels.

Writers of several processes overlap here, unlike SQLite's: the unique public IDs make two
processes that receive the same study create it once (the loser of the race reads the
winner's row), and a transaction that meets another's change (a unique or foreign key
violation, a deadlock, a serialization failure) is tried again a few times.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import outcome
import psycopg
import psycopg.errors
import trio
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from ...errors import ErrorCode, OrthancError, storage_full
from ...units import SECOND
from ..batch import Batcher
from ..settings import PostgresSettings
from ..thread import StartedCall, blocking_wait
from . import queries
from .base import NewInstance, StoreResult
from .dialect import POSTGRESQL
from .job_leases import JOB_COLUMNS, JOB_INDEXES, MEMBERS_TABLE
from .notifications import CHANNEL, Listener, Notifications, encode
from .pg_notifications import NOTIFY, PostgresListener
from .schema import schema
from .sql_backend import SqlBackend

log = logging.getLogger(__name__)
T = TypeVar("T")
_StoreItem = tuple[NewInstance, bool, Callable[[], object] | None]

MIN_CONNECTIONS = 2  # kept open when idle
POOL_TIMEOUT = 10 * SECOND  # longest wait for a connection (rare: the limiter waits first)
OPEN_TIMEOUT = 15 * SECOND  # longest wait for the first connections at start
CLOSE_TIMEOUT = 5 * SECOND
CANCEL_TIMEOUT = 2 * SECOND
STATEMENT_TIMEOUT_MS = 300_000  # the backstop for a statement nobody cancels
ATTEMPTS = 5  # of a transaction that meets another's change
APPLICATION_NAME = "dicom-node"
# pg_advisory_xact_lock key: processes starting together create the schema one at a time.
SCHEMA_LOCK = 0x6469636F6D
_RETRIED = (
    psycopg.errors.UniqueViolation,
    psycopg.errors.ForeignKeyViolation,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    queries.ConcurrentChange,
)


def _orthanc_error(error: psycopg.Error) -> OrthancError:
    """What the client learns of a PostgreSQL failure; the server's own words go to the log."""
    if isinstance(error, psycopg.errors.DiskFull):
        log.error("index: disk full: %s", error)
        return storage_full()
    log.error("index: %s", error, exc_info=error)
    if isinstance(error, psycopg.OperationalError):  # connection lost or refused, no connection free in time
        return OrthancError(ErrorCode.DATABASE_UNAVAILABLE)
    return OrthancError(ErrorCode.DATABASE)


class _Withdrawn(Exception):
    """The call was cancelled before its statement started."""


class _Call:
    """The connection one call is running on, for the thread that cancels it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # shared by the call's thread and the canceller's
        self._conn: psycopg.Connection[Any] | None = None
        self.cancelled = False

    def attach(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if self.cancelled:
                raise _Withdrawn
            self._conn = conn

    def detach(self) -> bool:
        """Once the call is done with its connection (after any cancellation under way has been
        sent): whether a cancellation reached it, which then must not serve again."""
        with self._lock:
            self._conn = None
            return self.cancelled

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is not None:
                try:
                    self._conn.cancel_safe(timeout=CANCEL_TIMEOUT)
                except psycopg.Error as error:  # the statement then ends by its timeout
                    log.warning("index: could not cancel a statement: %s", error)


class PostgresIndex(SqlBackend, Notifications):
    """Open with :meth:`open`. ``durable`` (SyncStorageArea) keeps PostgreSQL's synchronous
    commits; without it a commit returns before its log is flushed (a crash of the server may
    lose the last ones, never corrupt the database). It carries messages between the processes
    that share the database (LISTEN/NOTIFY, see :mod:`.pg_notifications`)."""

    def __init__(self, pool: ConnectionPool, pool_size: int, conninfo: str) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._limiter = trio.CapacityLimiter(pool_size)
        self._store_batcher = Batcher(self, self._store_batch)

    @classmethod
    async def open(cls, settings: PostgresSettings, *, durable: bool = True) -> PostgresIndex:
        parameters = settings.connection_parameters()
        options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}" + ("" if durable else " -c synchronous_commit=off")
        conninfo = make_conninfo(
            parameters.pop("conninfo", ""), **parameters, options=options, application_name=APPLICATION_NAME
        )
        pool: ConnectionPool = ConnectionPool(
            conninfo,
            min_size=min(MIN_CONNECTIONS, settings.pool_size),
            max_size=settings.pool_size,
            open=False,
            timeout=POOL_TIMEOUT,
            kwargs={"autocommit": True},  # transactions are opened by the calls that write
            # Each connection is checked (a round trip) as a call takes it, a dead one replaced
            # there: after a restart or a failover of the server, or pg_terminate_backend, every
            # idle connection was dead, and each failed the request that took it (503) before
            # the pool replaced it.
            check=ConnectionPool.check_connection,
            name="index",
        )
        index = cls(pool, settings.pool_size, conninfo)
        try:
            # One connection first: a refusal (no such database, bad password) fails at once, in its words.
            await trio.to_thread.run_sync(_probe, conninfo)
            await trio.to_thread.run_sync(partial(pool.open, wait=True, timeout=OPEN_TIMEOUT))
            await index._write(_create_schema)
        except BaseException as error:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(partial(pool.close, timeout=CLOSE_TIMEOUT))
            if isinstance(error, psycopg.Error):
                log.error("index: cannot use PostgreSQL at %s: %s", _where(settings), error)
                raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "Cannot connect to PostgreSQL") from error
            raise
        log.info("index: PostgreSQL at %s, %d connections", _where(settings), settings.pool_size)
        return index

    async def close(self) -> None:
        await trio.to_thread.run_sync(partial(self._pool.close, timeout=CLOSE_TIMEOUT))

    # -- how a call runs ------------------------------------------------------
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread once a connection is free (the runner of store batches)."""
        return await self._in_thread(None, fn, *args)

    async def _in_thread(self, call: _Call | None, fn: Callable[..., T], *args: Any) -> T:
        async with self._limiter:
            task = trio.lowlevel.current_task()
            token = trio.lowlevel.current_trio_token()

            def deliver(result: outcome.Outcome[T]) -> None:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)

            def abort(_: Any) -> trio.lowlevel.Abort:
                if call is not None:  # cancel the statement from elsewhere; the thread ends with its error
                    trio.lowlevel.start_thread_soon(call.cancel, _ignored)
                return trio.lowlevel.Abort.FAILED

            trio.lowlevel.start_thread_soon(partial(fn, *args), deliver)
            value: T = await trio.lowlevel.wait_task_rescheduled(abort)
            return value

    async def _call(self, write: bool, fn: Callable[..., T], *args: Any) -> T:
        call = _Call()
        try:
            return await self._in_thread(call, self._transaction, call, write, fn, *args)
        except (psycopg.errors.QueryCanceled, _Withdrawn) as error:
            if call.cancelled:
                await trio.lowlevel.checkpoint()  # raises the Cancelled that stopped the statement
            if isinstance(error, psycopg.Error):
                raise _orthanc_error(error) from error  # statement_timeout
            raise
        except psycopg.Error as error:
            raise _orthanc_error(error) from error
        except queries.ConcurrentChange as error:  # still changed under it after every attempt
            log.error("index: %s", error)
            raise OrthancError(ErrorCode.DATABASE) from error

    def _transaction(self, call: _Call | None, write: bool, fn: Callable[..., T], *args: Any) -> T:
        """In a worker thread: ``fn(sql, *args)`` on one connection, in one transaction when it
        writes (reads run a statement at a time, as on SQLite), tried again when it met another
        writer's change."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._pool.connection() as conn:
                    if call is not None:
                        call.attach(conn)
                    try:
                        with conn.transaction() if write else contextlib.nullcontext():
                            return fn(queries.Sql(conn, POSTGRESQL), *args)
                    finally:
                        if call is not None and call.detach():
                            conn.close()
            except _RETRIED as error:
                if attempt == ATTEMPTS:
                    raise
                log.debug("index: transaction met a concurrent change (%s), attempt %d", error, attempt + 1)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(False, fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(True, fn, *args)

    async def _write_unflushed(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(True, _unflushed, fn, *args)

    # -- ingest ------------------------------------------------------------------
    async def store(
        self, instance: NewInstance, *, overwrite: bool, written: StartedCall[Any] | None = None
    ) -> StoreResult:
        return await self._store_batcher.submit((instance, overwrite, blocking_wait(written)))

    def _store_batch(self, items: list[_StoreItem]) -> list[outcome.Outcome[StoreResult]]:
        """Group commit: one transaction for the stores that queued up while every connection
        was busy, committed once all their files are durable."""
        if len(items) > 1:
            # A failure rolls the whole batch back; it is then redone one by one, so only the culprit fails.
            with contextlib.suppress(Exception):
                return self._transaction(None, True, _insert_all, items)
        return [outcome.capture(self._store_one, item) for item in items]

    def _store_one(self, item: _StoreItem) -> StoreResult:
        try:
            return self._transaction(None, True, _insert_all, [item])[0].unwrap()
        except psycopg.Error as error:
            raise _orthanc_error(error) from error
        except queries.ConcurrentChange as error:
            log.error("index: %s", error)
            raise OrthancError(ErrorCode.DATABASE) from error

    # -- changes -----------------------------------------------------------------
    async def last_seq(self) -> int:
        return await self._read(_last_seq)

    # -- messages between processes ------------------------------------------------
    def notifications(self) -> Notifications:
        return self

    async def send(self, target: str, text: str) -> None:
        await self._read(self._tell, target, text)

    async def listen(self) -> Listener:
        return await PostgresListener.open(self._conninfo)

    def _tell(self, sql: queries.Sql, target: str, text: str) -> None:
        sql.row(NOTIFY, (CHANNEL, encode(target, text)))


def _insert_all(sql: queries.Sql, items: list[_StoreItem]) -> list[outcome.Outcome[StoreResult]]:
    """The rows of every item, then the wait for their files. Rows are inserted in the order of
    their IDs, the same in every process, so that two batches sharing resources lock them in the
    same order rather than deadlock."""
    results: list[outcome.Outcome[StoreResult]] = [outcome.Value(StoreResult(already_stored=True))] * len(items)
    for i in sorted(range(len(items)), key=lambda i: items[i][0].ids):
        new, overwrite, _ = items[i]
        results[i] = outcome.Value(queries.insert_instance(sql, new, overwrite))
    for _, _, written in items:
        if written is not None:
            written()  # its failure rolls the rows back and reaches the caller
    return results


def _unflushed(sql: queries.Sql, fn: Callable[..., T], *args: Any) -> T:
    """``fn(sql, *args)`` in a transaction whose commit does not wait for the server's disk (see
    SqlBackend._write_unflushed): a crash of the server may undo it, never tear it."""
    sql.run("SET LOCAL synchronous_commit TO OFF")
    return fn(sql, *args)


def _probe(conninfo: str) -> None:
    psycopg.connect(conninfo, connect_timeout=int(OPEN_TIMEOUT)).close()


def _create_schema(sql: queries.Sql) -> None:
    sql.row("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
    sql.db.execute(schema(POSTGRESQL))
    had_state = sql.row(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'jobs' AND column_name = 'state'"
    )
    for name, definition in JOB_COLUMNS:  # the cluster's columns of the jobs table
        sql.run(f"ALTER TABLE jobs ADD COLUMN IF NOT EXISTS {name} {definition}")
    if had_state is None:
        queries.adopt_saved_jobs(sql)
    for statement in (*JOB_INDEXES, MEMBERS_TABLE):
        sql.run(statement)


def _last_seq(sql: queries.Sql) -> int:
    row = sql.row("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM changes_seq_seq")
    return int(row[0]) if row else 0


def _where(settings: PostgresSettings) -> str:
    """Where the index lives, for the log (never the password, nor a URI that may hold one)."""
    return "the ConnectionUri" if settings.uri else f"{settings.host}:{settings.port}/{settings.database}"


def _ignored(_: outcome.Outcome[None]) -> None:
    """Where the canceller's own outcome goes: its failures are logged by itself."""
