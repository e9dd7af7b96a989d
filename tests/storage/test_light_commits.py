"""Light commits: a store whose file has a journaled name commits its index entry without
flushing the write-ahead log (its file is the durable record, see test_lost_commit_recovery);
any other store flushes it, and the log is still checkpointed, by a thread of its own. A
cluster job's bookkeeping commits without waiting for the disk too, on either backend."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from node.storage.index import Index
from node.storage.index import sqlite as sqlite_index
from node.storage.index.base import StoreResult
from node.storage.index.queries import Sql
from node.storage.index.sql_backend import SqlBackend
from tests.support.datasets import make_dataset
from tests.support.index_rows import new_instance
from tests.support.node import client_of, node_config, start_node
from tests.support.peers import c_store
from tests.support.storage import CreatingStore

SUCCESS = 0x0000
SQLITE_NORMAL = 1  # PRAGMA synchronous: commits flush the write-ahead log at checkpoints only


async def test_a_store_without_a_journaled_name_is_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No reserved names (every file created as it is written): nothing would find such a file
    after a crash, so its store's commit flushes the write-ahead log before it is acknowledged."""
    flushed: list[int] = []

    def recording_flush(fd: int) -> None:
        sqlite_index.os.fdatasync(fd)
        flushed.append(fd)

    monkeypatch.setattr(sqlite_index, "flush_log", recording_flush)
    config = node_config(tmp_path)
    async with trio.open_nursery() as nursery:
        node = await start_node(nursery, config, file_store=CreatingStore)
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [make_dataset()]) == [SUCCESS]
        assert len(flushed) == 1
        assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], [make_dataset(patient_id="P2")]) == [SUCCESS]
        assert len(flushed) == 2
        nursery.cancel_scope.cancel()


async def test_the_write_ahead_log_is_checkpointed(nursery: trio.Nursery, tmp_path: Path) -> None:
    """The writer leaves checkpoints to a thread, every so many transactions: the stores reach
    the database file, and the log does not grow for ever."""
    node = await start_node(nursery, node_config(tmp_path))
    database = node.settings.storage.index_directory / "index.sqlite"
    size = database.stat().st_size
    count = sqlite_index.CHECKPOINT_COMMITS + 1
    datasets = [make_dataset(sop_uid=f"1.2.3.{number}") for number in range(count)]
    assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], datasets) == [SUCCESS] * count
    index = node.index
    assert isinstance(index, sqlite_index.SqliteIndex) and index._checkpoints is not None
    checkpoints, _ = index._checkpoints  # white box: its thread, where the checkpoint was queued
    await checkpoints.run(lambda: None)
    assert database.stat().st_size > size


async def test_a_store_with_a_journaled_name_is_not_flushed(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reserved names (the default): the file's flush is the store's only one. (The journal of
    the names is flushed as it is written, before any of them is handed out.)"""
    flushed_by: list[str] = []

    def recording_flush(_: int) -> None:
        flushed_by.append(sys._getframe(1).f_code.co_name)

    monkeypatch.setattr(sqlite_index, "flush_log", recording_flush)
    node = await start_node(nursery, node_config(tmp_path))
    datasets = [make_dataset(sop_uid="1.2.3.1"), make_dataset(sop_uid="1.2.3.2")]
    assert await trio.to_thread.run_sync(c_store, node.ports["dicom"], datasets) == [SUCCESS] * 2
    assert "_journal" in flushed_by
    assert {caller for caller in flushed_by if caller != "_journal"} == set()
    index = node.index
    assert isinstance(index, sqlite_index.SqliteIndex)
    journaled = set(await index.journaled_names())
    async with client_of(node) as client:
        stored = {
            (await client.get(f"/instances/{i}")).json()["FileUuid"] for i in (await client.get("/instances")).json()
        }
    assert len(stored) == len(datasets)
    assert journaled, "the names in stock are journaled"
    assert journaled.isdisjoint(stored), "each store took its name out of the journal"


async def test_a_store_waits_for_another_process_off_the_event_loop(tmp_path: Path) -> None:
    """A tool holding the database's write lock: the store waits on the writer's thread (its
    rows are not begun on the event loop, which would poll for the lock and block the node)."""
    index = sqlite_index.SqliteIndex(tmp_path)
    assert index.enable_file_recovery() is not None
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    results: list[StoreResult] = []

    async def store() -> None:
        results.append(await index.store(new_instance("1.2.3.1"), overwrite=False))

    try:
        other.execute("BEGIN IMMEDIATE")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store)
            await trio.testing.wait_all_tasks_blocked()  # the loop is free: the store waits elsewhere
            assert results == []
            other.execute("COMMIT")
        assert [result.already_stored for result in results] == [False]
        assert (await index.statistics())["CountInstances"] == 1
    finally:
        other.close()
        await index.close()


async def test_job_bookkeeping_commits_without_waiting_for_the_disk(any_index: Index) -> None:
    """A cluster job's claim, progress, end and leases are redone when a crash of the machine loses
    them: their transactions commit without waiting for the disk (SQLite: the write-ahead log
    left unflushed; PostgreSQL: synchronous_commit off for that transaction alone), where the
    index's other writes wait for it."""
    assert isinstance(any_index, SqlBackend)  # white box: the two kinds of write
    if isinstance(any_index, sqlite_index.SqliteIndex):
        assert any_index.enable_file_recovery() is not None  # as a node opens it: commits flushed by hand
        query, unflushed = "PRAGMA synchronous", (SQLITE_NORMAL,)
    else:  # the tests' server runs with synchronous_commit off: where the setting comes from tells
        query, unflushed = (
            "SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'",
            ("off", "session"),
        )

    def setting(sql: Sql) -> tuple[Any, ...] | None:
        return sql.row(query)

    assert await any_index._write_unflushed(setting) == unflushed
    assert await any_index._write(setting) != unflushed
