"""The index interface and its backends (SQLite now, PostgreSQL later)."""

from .base import (
    Attachment,
    Change,
    DeleteResult,
    Index,
    NewInstance,
    ResourceRecord,
    StoreResult,
)

__all__ = ["Attachment", "Change", "DeleteResult", "Index", "NewInstance", "ResourceRecord", "StoreResult"]
