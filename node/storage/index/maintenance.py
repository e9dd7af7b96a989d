"""Upkeep of a SQLite index shared by several processes (members), done by their supervisor."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Collection
from pathlib import Path

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite"
WAL_SUFFIX = "-wal"
WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024  # a write-ahead log larger than this is folded back into the index
BUSY_TIMEOUT_SECONDS = 1.0  # the supervisor's upkeep gives way to the members' writes


def checkpoint_if_large(index_directory: Path) -> None:
    """Fold a large write-ahead log back into the index (members' readers may hold it back:
    the next call tries again)."""
    path = index_directory / INDEX_FILE
    try:
        if Path(f"{path}{WAL_SUFFIX}").stat().st_size <= WAL_CHECKPOINT_BYTES:
            return
    except FileNotFoundError:
        return
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as db:
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.info("index checkpoint postponed: the members are busy")
    except sqlite3.Error as error:
        log.warning("index checkpoint failed: %s", error)


def remove_properties(index_directory: Path, names: Collection[str]) -> None:
    """Forget global properties (what one run of the members shared, which the next must not
    inherit); an index not created yet has none."""
    path = index_directory / INDEX_FILE
    if not path.exists() or not names:
        return
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    # No such table: nothing kept yet.
    with contextlib.closing(connection) as db, contextlib.suppress(sqlite3.OperationalError):
        db.execute(f"DELETE FROM global_properties WHERE name IN ({','.join('?' * len(names))})", list(names))
