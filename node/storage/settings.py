"""The storage options: where files and the index live, and how an instance is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULTS, Config
from ..errors import ErrorCode, OrthancError
from ..units import SECOND

_POSTGRESQL = "PostgreSQL"


@dataclass(frozen=True)
class PostgresSettings:
    """The "PostgreSQL" option: Orthanc's plugin keys, and the size of our connection pool."""

    enabled: bool  # EnableIndex: the index lives in PostgreSQL, not in index.sqlite
    host: str
    port: int
    database: str
    username: str
    password: str = field(repr=False)
    uri: str = field(repr=False)  # ConnectionUri: when set, it alone says where to connect
    pool_size: int  # connections (and worker threads) of one node process

    @classmethod
    def from_config(cls, config: Config) -> PostgresSettings:
        # The plugin's other keys (Lock, EnableSsl...) are accepted and ignored, as unknown options are.
        section: dict[str, Any] = {**DEFAULTS[_POSTGRESQL], **config["PostgreSQL"]}
        for key, default in DEFAULTS[_POSTGRESQL].items():
            expected = bool if isinstance(default, bool) else type(default)
            value = section[key]
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise OrthancError(
                    ErrorCode.BAD_FILE_FORMAT, f"{_POSTGRESQL}.{key} must be of type {expected.__name__}"
                )
        if section["PoolSize"] < 1:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"{_POSTGRESQL}.PoolSize must be at least 1")
        return cls(
            enabled=section["EnableIndex"],
            host=section["Host"],
            port=section["Port"],
            database=section["Database"],
            username=section["Username"],
            password=section["Password"],
            uri=section["ConnectionUri"],
            pool_size=section["PoolSize"],
        )

    def connection_parameters(self) -> dict[str, Any]:
        """libpq's keywords; ConnectionUri, when set, is given whole as ``conninfo``."""
        if self.uri:
            return {"conninfo": self.uri}
        given = {"host": self.host, "port": self.port, "dbname": self.database}
        given |= {"user": self.username} if self.username else {}
        given |= {"password": self.password} if self.password else {}
        return given


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
    postgresql: PostgresSettings  # where the index lives when not in index.sqlite

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
            postgresql=PostgresSettings.from_config(config),
        )
