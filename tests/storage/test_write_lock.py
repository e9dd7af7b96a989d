"""The SQLite index shares its file with other processes (members): a write waits for the lock
another connection holds instead of failing, and gives up with Orthanc's error only after
the busy timeout."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from node.errors import OrthancError
from node.storage.index import sqlite as sqlite_index
from node.storage.index.sqlite import SqliteIndex


def _other_writer(tmp_path: Path) -> sqlite3.Connection:
    """A second connection, as another member's, holding the write lock."""
    other = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO global_properties(name, value) VALUES ('held', 'by another process')")
    return other


async def test_a_write_waits_for_the_lock_another_connection_holds(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path)
    other = _other_writer(tmp_path)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(index.set_property, "written", "after the other commit")
            await trio.testing.wait_all_tasks_blocked()
            other.execute("COMMIT")
        assert await index.get_property("written") == "after the other commit"
        assert await index.get_property("held") == "by another process"
    finally:
        other.close()
        await index.close()


async def test_a_lock_held_past_the_timeout_fails_the_write_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_index, "BUSY_TIMEOUT_SECONDS", 0.05)
    index = SqliteIndex(tmp_path)
    other = _other_writer(tmp_path)
    try:
        with pytest.raises(OrthancError):
            await index.set_property("refused", "while locked")
        other.execute("ROLLBACK")
        await index.set_property("written", "once released")
        assert await index.get_property("written") == "once released"
        assert await index.get_property("refused") is None
    finally:
        other.close()
        await index.close()
