"""The storage options: where files and the index live, and how an instance is stored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..units import SECOND


@dataclass(frozen=True)
class StorageSettings:
    storage_directory: Path  # DICOM files and attachments
    index_directory: Path  # index.sqlite
    temporary_directory: Path | None  # uploads, datasets and archives spooled to disk; None: the OS's
    compress: bool  # zlib-compress stored files
    sync: bool  # a store is acknowledged only once its file and index entry are flushed to disk
    store_md5: bool  # keep the MD5 of stored files
    overwrite_instances: bool  # a re-sent instance replaces the stored one
    stable_age: float  # seconds without a new instance before a resource is stable

    @classmethod
    def from_config(cls, config: Config) -> StorageSettings:
        storage = config["StorageDirectory"]
        temporary = config["TemporaryDirectory"]
        return cls(
            storage_directory=Path(storage),
            index_directory=Path(config["IndexDirectory"] or storage),
            temporary_directory=Path(temporary) if temporary else None,
            compress=bool(config["StorageCompression"]),
            sync=bool(config["SyncStorageArea"]),
            store_md5=bool(config["StoreMD5ForAttachments"]),
            overwrite_instances=bool(config["OverwriteInstances"]),
            stable_age=float(config["StableAge"]) * SECOND,
        )
