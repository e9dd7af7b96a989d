"""The SQLite index reads on connections of their own, beside its one writer: a read waits for
no write, yet sees every write that returned before it started, and one snapshot throughout."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from node.errors import ErrorCode, OrthancError
from node.storage.index import queries, readers
from node.storage.index.sqlite import READER_THREADS, SqliteIndex
from tests.support.index_rows import new_instance

ROUNDS = 50  # writes each followed at once by a read


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[SqliteIndex]:
    opened = SqliteIndex(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_read_started_after_a_write_returned_sees_it(index: SqliteIndex) -> None:
    """Whichever reader takes it, while other reads keep the readers busy."""

    async def other_reads(stop: trio.Event) -> None:
        while not stop.is_set():
            await index.statistics()

    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for _ in range(READER_THREADS):
            nursery.start_soon(other_reads, stop)
        for i in range(ROUNDS):
            await index.set_property("round", str(i))  # one statement, committed alone
            assert await index.get_property("round") == str(i)
            await index.save_jobs({f"job-{i}": "{}"}, ())  # in a transaction
            assert f"job-{i}" in await index.saved_jobs()
            sop = f"1.2.840.1.1.{i}"
            await index.store(new_instance(sop), overwrite=False)  # in a batch's transaction
            assert len(await index.lookup_identifier(sop)) == 1
        stop.set()


async def test_reads_answer_while_the_writer_is_busy(index: SqliteIndex) -> None:
    await index.set_property("written", "before")
    busy = threading.Event()
    async with trio.open_nursery() as nursery:
        try:
            nursery.start_soon(index._thread.run, busy.wait)  # white box: the writer's thread is held
            await trio.testing.wait_all_tasks_blocked()  # the hold is queued before the write
            nursery.start_soon(index.set_property, "written", "queued behind")
            await trio.testing.wait_all_tasks_blocked()
            assert await index.get_property("written") == "before"
        finally:
            busy.set()  # a failure above must not leave the writer's thread (uncancellable) held
    assert await index.get_property("written") == "queued behind"


async def test_a_read_sees_one_snapshot_throughout(index: SqliteIndex, tmp_path: Path) -> None:
    """Another connection commits between the read's two statements: the second does not see it."""
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)

    def read_twice(sql: queries.Sql) -> tuple[str | None, str | None]:
        first = queries.get_property(sql, "name")
        other.execute("INSERT INTO global_properties(name, value) VALUES ('name', 'committed meanwhile')")
        return first, queries.get_property(sql, "name")

    try:
        assert await index._read(read_twice) == (None, None)
        assert await index.get_property("name") == "committed meanwhile"
    finally:
        other.close()


async def _hold_every_reader(index: SqliteIndex, nursery: trio.Nursery, release: threading.Event) -> None:
    """Give every reader a read that waits for ``release``; return once all of them run."""
    running = [threading.Event() for _ in range(READER_THREADS)]

    def held(_: queries.Sql, started: threading.Event) -> None:
        started.set()
        release.wait()

    for started in running:
        nursery.start_soon(index._read, held, started)
    for started in running:
        await trio.to_thread.run_sync(started.wait)


async def test_a_read_cancelled_while_waiting_for_a_reader_never_runs(index: SqliteIndex) -> None:
    release = threading.Event()
    ran: list[str] = []

    async def release_once_all_wait() -> None:
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    async with trio.open_nursery() as nursery:
        await _hold_every_reader(index, nursery, release)
        nursery.start_soon(release_once_all_wait)
        with trio.CancelScope() as scope:
            scope.cancel()  # takes effect once the read waits for a reader
            await index._read(lambda _: ran.append("withdrawn read"))
    await index.statistics()  # the readers took every queued read since
    assert scope.cancelled_caught and ran == []


async def test_a_read_under_way_when_cancelled_runs_to_its_end(index: SqliteIndex) -> None:
    release, started = threading.Event(), threading.Event()
    got: list[int] = []

    def long_read(_: queries.Sql) -> int:
        started.set()
        release.wait()
        return 42

    async def read_then_cancel() -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_once_started() -> None:
                    await trio.to_thread.run_sync(started.wait)
                    scope.cancel()
                    release.set()

                nursery.start_soon(cancel_once_started)
                got.append(await index._read(long_read))

    await read_then_cancel()
    assert got == [42]


async def test_a_write_sent_to_a_reader_fails(index: SqliteIndex) -> None:
    with pytest.raises(OrthancError) as failure:
        await index._read(queries.set_property, "misrouted", "write")
    assert failure.value.code == ErrorCode.DATABASE
    assert await index.get_property("misrouted") is None


async def test_reads_run_inline_under_a_virtual_clock(
    index: SqliteIndex, autojump_clock: trio.testing.MockClock
) -> None:
    await index.set_property("name", "value")
    assert await index._read(lambda _: threading.current_thread()) is threading.current_thread()
    assert await index.get_property("name") == "value"


async def test_close_ends_every_reader_and_its_connection(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path)
    await index.close()
    readers = index._readers  # white box
    assert len(readers._threads) == READER_THREADS and not any(t.is_alive() for t in readers._threads)
    for sql in readers._sqls:
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            sql.db.execute("SELECT 1")


async def test_a_lookup_runs_on_the_event_loop(index: SqliteIndex) -> None:
    await index.set_property("name", "value")
    assert await index._lookup(lambda _: threading.current_thread()) is threading.current_thread()
    assert await index.get_property("name") == "value"


async def test_a_lookup_that_finds_the_database_busy_goes_to_a_reader(index: SqliteIndex) -> None:
    """Busy (another process recovering the log): the event loop does not wait for it."""
    loop_thread = threading.current_thread()

    def read(_: queries.Sql) -> str:
        if threading.current_thread() is loop_thread:
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise busy
        return threading.current_thread().name

    assert (await index._lookup(read)).startswith("sqlite-reader")


def _long_count(sql: queries.Sql, ran_on: list[str]) -> int:
    """A statement of some 20,000 steps of SQLite's machine; where it ran is noted in ``ran_on``."""
    ran_on.append(threading.current_thread().name)
    row = sql.row(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT count(*) FROM c"
    )
    assert row is not None
    return int(row[0])


async def test_a_lookup_over_its_budget_goes_to_a_reader(index: SqliteIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lookup that turns out long is interrupted on the event loop and answered by a reader."""
    monkeypatch.setattr(readers, "LOOKUP_BUDGET_SECONDS", 0.0)
    ran_on: list[str] = []
    assert await index._lookup(_long_count, ran_on) == 20000
    assert ran_on[0] == threading.current_thread().name and ran_on[1].startswith("sqlite-reader")
    monkeypatch.undo()  # a short lookup, within its budget: on the loop
    assert await index._lookup(lambda _: threading.current_thread()) is threading.current_thread()


async def test_a_lookup_of_one_statement_runs_outside_a_transaction(
    index: SqliteIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement is its own snapshot: on the event loop, no transaction is begun around it
    (a lookup of several statements has one); it sees the writes that returned before it, and
    goes to a reader once over its budget, as any lookup."""
    await index.set_property("name", "value")
    loop_thread = threading.current_thread()
    assert await index._lookup_one(lambda sql: (threading.current_thread(), sql.db.in_transaction)) == (
        loop_thread,
        False,
    )
    assert await index._lookup(lambda sql: sql.db.in_transaction) is True
    assert await index.get_property("name") == "value"
    monkeypatch.setattr(readers, "LOOKUP_BUDGET_SECONDS", 0.0)
    ran_on: list[str] = []
    assert await index._lookup_one(_long_count, ran_on) == 20000
    assert ran_on[0] == loop_thread.name and ran_on[1].startswith("sqlite-reader")


async def test_the_end_of_a_lookup_over_its_budget_is_not_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is checked every so many steps of SQLite's machine, counted over all the runs
    of a statement: a check may fall in the COMMIT that ends a lookup's snapshot, once the lookup
    spent its budget. Checked at every step here, so that it falls there: the loop's connection
    must leave the snapshot all the same, or every later lookup on it fails."""
    monkeypatch.setattr(readers, "_LOOKUP_CHECK_STEPS", 1)
    index = SqliteIndex(tmp_path)
    loop_thread = threading.current_thread()

    def over_budget(sql: queries.Sql) -> str:
        if threading.current_thread() is loop_thread:
            index._readers._lookup_deadline = 0.0  # white box: its budget ran out as it ended
        return threading.current_thread().name

    try:
        await index._lookup(over_budget)
        assert await index._lookup(lambda _: threading.current_thread()) is loop_thread
    finally:
        await index.close()
