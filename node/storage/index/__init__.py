"""The index interface and its backends: SQLite (one host), PostgreSQL (shared by several)."""

from ..settings import StorageSettings
from .base import (
    Attachment,
    Change,
    DeleteResult,
    Index,
    NewInstance,
    ResourceRecord,
    StoreResult,
)
from .postgresql import PostgresIndex
from .sqlite import SqliteIndex


async def open_index(storage: StorageSettings, *, shared: bool = False) -> Index:
    """The index the settings name: PostgreSQL when its section enables it, else index.sqlite,
    which other processes (``shared``: members) may write to as well."""
    if storage.postgresql.enabled:
        return await PostgresIndex.open(storage.postgresql, durable=storage.sync)
    return SqliteIndex(storage.index_directory, durable=storage.sync, shared=shared)


__all__ = [
    "Attachment",
    "Change",
    "DeleteResult",
    "Index",
    "NewInstance",
    "ResourceRecord",
    "StoreResult",
    "open_index",
]
