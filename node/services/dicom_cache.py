"""Parsed DICOM files kept in memory, so that repeated reads of one instance (its tags, its
simplified tags, its content) parse its file once.

Bounded by the total size of the files held (128 MiB, as Orthanc's), least recently used
first out; a file larger than the bound is parsed for its reader and not kept. An entry
remembers the attachment it was parsed from: a deleted instance's entry is dropped at
once, and an overwritten instance (new attachment) is parsed again at its next read.
The count and size are published as Orthanc's `orthanc_dicom_cache_count` and
`orthanc_dicom_cache_size` (MiB) whenever they change.

A pydicom dataset is not safe to read from two threads at once (reading converts raw
elements in place), so each entry has a lock, held while a reader's worker thread uses the
dataset (a cancelled reader still waits for its thread, so the lock outlives the use).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio
from pydicom.dataset import Dataset

from ..dicom.parse import read_dataset
from ..metrics import Metrics
from ..offload import offload

DICOM_CACHE_BYTES = 128 * 1024 * 1024
_MIB = 1024 * 1024
COUNT_METRIC = "orthanc_dicom_cache_count"
SIZE_METRIC = "orthanc_dicom_cache_size"

T = TypeVar("T")


@dataclass
class _Entry:
    attachment: str  # the file the dataset was parsed from
    dataset: Dataset
    size: int
    lock: trio.Lock = field(default_factory=trio.Lock)


class DicomCache:
    """Instance ID -> its parsed file, least recently used first."""

    def __init__(self, metrics: Metrics, max_bytes: int = DICOM_CACHE_BYTES) -> None:
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0
        self._publish()

    @property
    def count(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes of the files held."""
        return self._size

    def _publish(self) -> None:
        self._metrics.set_gauge(COUNT_METRIC, len(self._entries))
        self._metrics.set_gauge(SIZE_METRIC, self._size / _MIB)

    def _drop(self, public_id: str) -> None:
        entry = self._entries.pop(public_id, None)
        if entry is not None:
            self._size -= entry.size

    def _keep(self, public_id: str, entry: _Entry) -> None:
        self._drop(public_id)
        if entry.size > self._max_bytes:
            return
        self._entries[public_id] = entry
        self._size += entry.size
        while self._size > self._max_bytes:
            self._drop(next(iter(self._entries)))

    async def read(
        self,
        public_id: str,
        attachment: str,
        load: Callable[[], Awaitable[bytes]],
        use: Callable[..., T],
        *args: Any,
    ) -> T:
        """``use(dataset, *args)`` in a worker thread, the dataset parsed from ``load()`` unless
        the cache holds it already for this ``attachment``."""
        entry = self._entries.get(public_id)
        if entry is not None and entry.attachment == attachment:
            self._entries.move_to_end(public_id)
        else:
            data = await load()
            entry = _Entry(attachment, await offload(read_dataset, data), len(data))
            self._keep(public_id, entry)
            self._publish()
        async with entry.lock:
            return await offload(use, entry.dataset, *args)

    def forget_files(self, attachments: Collection[str]) -> None:
        """Drop the entries parsed from these files (their instances are gone)."""
        removed = set(attachments)
        gone = [public_id for public_id, entry in self._entries.items() if entry.attachment in removed]
        for public_id in gone:
            self._drop(public_id)
        if gone:
            self._publish()
