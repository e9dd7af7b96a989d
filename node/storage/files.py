"""DICOM files under two-level hashed folders, written atomically."""

from __future__ import annotations

import os
import uuid
import zlib
from pathlib import Path

from ..metrics import Metrics


class FileStore:
    """Files named by UUID under ``root/ab/cd/<uuid>`` like Orthanc's storage area.

    A write goes to a temporary name first and is renamed into place, so a crash
    never leaves a half-written file under a live name. Writes, reads and removals
    are timed here, where the work happens, for Orthanc's storage metrics.
    """

    def __init__(self, root: Path, *, compress: bool = False, metrics: Metrics | None = None) -> None:
        self.root = root
        self.compress = compress
        self.metrics = metrics or Metrics(enabled=False)
        root.mkdir(parents=True, exist_ok=True)

    def path_of(self, file_uuid: str) -> Path:
        return self.root / file_uuid[0:2] / file_uuid[2:4] / file_uuid

    def write(self, data: bytes) -> tuple[str, int]:
        """Store bytes under a new UUID; return it and the stored size.

        On the ingest path of every instance: plain strings and the folders created
        only when the first open fails, which spares a syscall or two per file.
        """
        with self.metrics.timer("orthanc_storage_create_duration_ms"):
            return self._write(data)

    def _write(self, data: bytes) -> tuple[str, int]:
        file_uuid = str(uuid.uuid4())
        folder = os.path.join(self.root, file_uuid[0:2], file_uuid[2:4])
        path = os.path.join(folder, file_uuid)
        temporary = path + ".tmp"
        payload = zlib.compress(data) if self.compress else data
        try:
            handle = open(temporary, "wb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:  # the first file of its folder
            os.makedirs(folder, exist_ok=True)
            handle = open(temporary, "wb")  # noqa: SIM115
        with handle:
            handle.write(payload)
        os.replace(temporary, path)
        return file_uuid, len(payload)

    def read(self, file_uuid: str, compressed: bool = False) -> bytes:
        data = self.read_raw(file_uuid)
        return zlib.decompress(data) if compressed else data

    def read_raw(self, file_uuid: str) -> bytes:
        with self.metrics.timer("orthanc_storage_read_duration_ms"):
            return self.path_of(file_uuid).read_bytes()

    def remove(self, file_uuid: str) -> None:
        with self.metrics.timer("orthanc_storage_remove_duration_ms"):
            self.path_of(file_uuid).unlink(missing_ok=True)

    def remove_many(self, file_uuids: list[str]) -> None:
        for file_uuid in file_uuids:
            self.remove(file_uuid)

    def remove_stale_temporaries(self) -> int:
        """Files left half-written by a crash: never indexed, safe to delete."""
        removed = 0
        for path in self.root.glob("*/*/*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed
