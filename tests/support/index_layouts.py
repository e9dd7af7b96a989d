"""Indexes whose tables an earlier version of the node made, before some tables were stored in
the order of their primary key: a new version opens them as they are."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from node.storage.index import Index
from node.storage.index.dialect import POSTGRESQL, SQLITE, Dialect
from node.storage.index.postgresql import PostgresIndex
from node.storage.index.schema import schema
from node.storage.index.sqlite import SqliteIndex
from tests.support.postgres import postgres_settings

_IDENTIFIERS_KEY = ",\n    PRIMARY KEY (internal_id, tag)"
_IDENTIFIERS_BY_RESOURCE = "CREATE INDEX IF NOT EXISTS identifiers_resource ON identifiers(internal_id);"


def earlier_schema(dialect: Dialect) -> str:
    """Today's tables as the earlier version made them: each with its row number beside its
    primary key, and identifiers with no key but an index of their resource."""
    current = schema(dialect)
    assert _IDENTIFIERS_KEY in current  # the test data follows the schema it reverts
    earlier = current.replace(_IDENTIFIERS_KEY, "")
    if dialect.keyed_by_primary_key:
        earlier = earlier.replace(dialect.keyed_by_primary_key, "")
    return f"{earlier}\n{_IDENTIFIERS_BY_RESOURCE}\n"


async def open_earlier_index(backend: dict[str, Any] | None, folder: Path) -> Index:
    """An index of ``backend`` (None: SQLite in ``folder``; else PostgreSQL's option) whose
    tables the earlier version made."""
    if backend is None:
        folder.mkdir(parents=True)
        with contextlib.closing(sqlite3.connect(folder / "index.sqlite")) as db:
            db.executescript(earlier_schema(SQLITE))
        return SqliteIndex(folder)
    with psycopg.connect(
        host=backend["Host"], port=backend["Port"], user=backend["Username"], dbname=backend["Database"],
        autocommit=True,
    ) as db:  # fmt: skip
        db.execute(earlier_schema(POSTGRESQL))
    return await PostgresIndex.open(postgres_settings(backend))
