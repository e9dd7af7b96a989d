"""Reads of the SQLite index on connections of their own, beside its one writer.

In WAL mode a reader sees the last committed state without waiting for the writer, so
reads need not queue behind the writer's thread, where every group commit waits for its
log to reach the disk. A few threads, each holding one read-only connection, take the reads
in their order of arrival.

Each read runs in a read transaction of its own, begun when it starts: it sees every write
that returned before it started, and one snapshot throughout, however many statements it
runs, whatever commits meanwhile. The transaction ends with the read, so no snapshot is held
across an await (a held one would keep checkpoints from emptying the log).

A read that is cancelled while it waits for a free reader is withdrawn: it never runs. One
under way runs to its end (reads are short), and its caller gets the value.

A lookup (a few rows by key) runs on the event loop instead, on a connection of its own
(:meth:`Readers.run_here`): it takes less time than the hand-off to a reader and back, and a
task waiting for that hand-off waits again for its turn at the interpreter while the loop is
busy, which made such reads the longest waits of a job's step. One that turns out long (the
instances of a study of thousands) is interrupted after LOOKUP_BUDGET_SECONDS and runs again on
a reader: the loop is never held longer than that.
"""

from __future__ import annotations

import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

from ...offload import under_virtual_clock
from . import queries
from .dialect import SQLITE

T = TypeVar("T")

_STOP = object()
LOOKUP_BUDGET_SECONDS = 0.002  # the longest a lookup holds the event loop before a reader takes it
_LOOKUP_CHECK_STEPS = 1000  # SQLite virtual machine steps between two checks of that budget
_PRIMARY_CODE = 0xFF  # the low byte of an extended SQLite result code is its primary code


def primary_code(error: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (SQLITE_BUSY, SQLITE_FULL...), 0 if it has none."""
    return getattr(error, "sqlite_errorcode", 0) & _PRIMARY_CODE


class Readers:
    """Threads that each run reads on one connection of ``connections`` (opened by the caller,
    usable from any thread), closed by :meth:`close`. A read's SQLite error reaches its caller
    as ``translate`` makes it."""

    def __init__(
        self,
        name: str,
        connections: list[sqlite3.Connection],
        here: sqlite3.Connection,
        translate: Callable[[sqlite3.Error], Exception],
    ) -> None:
        self._translate = translate
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._sqls = [queries.Sql(connection, SQLITE) for connection in connections]
        self._here = queries.Sql(here, SQLITE)  # the event loop's (see run_here)
        self._lookup_deadline = math.inf
        here.set_progress_handler(self._lookup_over_budget, _LOOKUP_CHECK_STEPS)
        self._threads = [
            threading.Thread(target=self._loop, args=(sql,), name=f"{name}-{i}", daemon=True)
            for i, sql in enumerate(self._sqls)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, sql: queries.Sql) -> None:
        while True:
            work = self._queue.get()
            if work is _STOP:
                sql.db.close()
                return
            work(sql)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)`` on a free reader, in a read transaction."""
        if under_virtual_clock():  # inline, as the writer's calls are (see under_virtual_clock)
            await trio.lowlevel.cancel_shielded_checkpoint()
            return self._in_snapshot(self._sqls[0], fn, *args)
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()
        # Whoever takes the ticket first decides: the reader (the read runs) or the abort (it
        # is withdrawn). list.pop is atomic, so exactly one of them gets it.
        ticket = [True]

        def work(sql: queries.Sql) -> None:
            try:
                ticket.pop()
            except IndexError:  # withdrawn
                return
            result = outcome.capture(self._in_snapshot, sql, fn, *args)
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        def abort(_: Any) -> trio.lowlevel.Abort:
            try:
                ticket.pop()
            except IndexError:  # under way: its caller waits for it
                return trio.lowlevel.Abort.FAILED
            return trio.lowlevel.Abort.SUCCEEDED

        self._queue.put(work)
        value: T = await trio.lowlevel.wait_task_rescheduled(abort)
        return value

    async def run_here(self, fn: Callable[..., T], *args: Any, single: bool = False) -> T:
        """``fn(sql, *args)`` on the event loop, in a read transaction: for a lookup of a few rows
        by key. The connection never waits for a lock: a read that finds the database busy (another
        process recovering the log), or that runs over its budget, goes to a reader instead.

        ``single``: ``fn`` reads with one statement, which SQLite runs in a read transaction of its
        own, so none is begun and committed around it. Each of those two is a call into SQLite,
        where the loop lets any thread waiting for the interpreter take it, and waits to get it
        back: under ingest, BEGIN and COMMIT cost a lookup as much as its own statement."""
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            if single:
                return self._within_budget(self._here, fn, *args)
            return _snapshot(self._here, self._within_budget, fn, *args)
        except sqlite3.Error as error:
            if primary_code(error) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_INTERRUPT):
                return await self.run(fn, *args)
            raise self._translate(error) from error

    def _within_budget(self, sql: queries.Sql, fn: Callable[..., T], *args: Any) -> T:
        """``fn(sql, *args)`` under the loop's budget, which ends with it: SQLite checks the budget
        every so many steps counted over all the runs of a statement, so a check may fall in the
        COMMIT that ends the snapshot, and an interrupted COMMIT would leave the connection in
        that snapshot, every later lookup failing to begin its own."""
        self._lookup_deadline = time.perf_counter() + LOOKUP_BUDGET_SECONDS
        try:
            return fn(sql, *args)
        finally:
            self._lookup_deadline = math.inf

    def _lookup_over_budget(self) -> bool:
        """SQLite's progress handler on the loop's connection: True interrupts the lookup."""
        return time.perf_counter() > self._lookup_deadline

    def close(self) -> None:
        """Once the reads queued before have run: close every connection, end every thread."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._here.db.close()

    def _in_snapshot(self, sql: queries.Sql, fn: Callable[..., T], *args: Any) -> T:
        try:
            return _snapshot(sql, fn, *args)
        except sqlite3.Error as error:
            raise self._translate(error) from error


def _snapshot(sql: queries.Sql, fn: Callable[..., T], *args: Any) -> T:
    sql.db.execute("BEGIN")
    try:
        return fn(sql, *args)
    finally:
        if sql.db.in_transaction:
            sql.db.execute("COMMIT")  # of a transaction that wrote nothing: it only ends the snapshot
