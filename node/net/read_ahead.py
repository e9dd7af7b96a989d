"""The stored files of a send (a job's, or a C-MOVE/C-GET's sub-operations), read in worker
threads ahead of the instance being sent.

A send waits on the remote most of the time (its answer to each C-STORE or POST); the
next files are looked up in the index and read from disk meanwhile, so the sender finds
each one ready. The lookups are one index query for several windows of reads (a refill
then usually starts its reads at once, without a task or a wait), and small files are
read several per worker call: a thread hop costs more than reading a tiny file. Memory
is bounded by the bytes read ahead, not by the job.

An instance deleted or a file gone since the job was submitted fails when its turn
comes, with the error a plain read would give (unknown resource, inexistent file).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import trio

from ..errors import ErrorCode, OrthancError
from ..offload import Pending, offload_ahead
from ..services.bundle import ServiceBundle
from ..storage.files import FileStore
from ..storage.index.base import COMPRESSION_ZLIB, Attachment
from ..units import MEGABYTE
from .ul.operation import first_real

AHEAD_FILES = 32  # files read ahead of the one being sent, at most
LOOKUP_FILES = 256  # instances looked up in one index query: most refills then wait for no lookup
AHEAD_BYTES = 8 * MEGABYTE  # bytes read ahead, at most (one file more when a single file is larger)
GROUP_BYTES = 1 * MEGABYTE  # consecutive files read by one worker call, up to this size together

Transform = Callable[[bytes], bytes]  # applied to each file in the worker thread (gzip, say)
T = TypeVar("T")


@dataclass(frozen=True)
class _Missing:
    """Why an instance has no file to send: raised when its turn comes."""

    error: OrthancError


def _read_group(files: FileStore, attachments: Sequence[Attachment], transform: Transform | None) -> list[object]:
    """Each file's bytes (transformed), or the error its read met, in order."""
    out: list[object] = []
    for attachment in attachments:
        try:
            data = files.read(attachment.uuid, attachment.compression == COMPRESSION_ZLIB)
        except FileNotFoundError:
            out.append(_Missing(OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}")))
            continue
        except OrthancError as error:
            out.append(_Missing(error))
            continue
        out.append(transform(data) if transform is not None else data)
    return out


class FileReadAhead:
    """``await files.get(position)``: the stored file of ``instances[position]``, read ahead.

    Positions are asked in increasing order; asking another one (a run resumed elsewhere)
    drops what was read ahead. :meth:`close` drops it too (end of a run). The sender sends
    each file through :meth:`beside`, which refills meanwhile when it is due, so that the
    index lookups of the next files are not waited for in turn.
    """

    def __init__(self, services: ServiceBundle, instances: Sequence[str], transform: Transform | None = None) -> None:
        self._services = services
        self._instances = instances
        self._transform = transform
        self._found: dict[int, Attachment | _Missing] = {}  # looked up, not yet read
        # Started: (group, index in it), or why the instance has no file to read.
        self._reads: dict[int, tuple[Pending[list[object]], int] | _Missing] = {}
        self._bytes: dict[int, int] = {}  # size of each started read, until it is taken
        self._bytes_ahead = 0  # their sum
        self._next = 0  # first position not started
        self._looked_up = 0  # first position not looked up (from self._next on)

    async def get(self, position: int) -> bytes:
        if position not in self._reads:  # the first, or a run resumed elsewhere, or nobody refilled
            self.close()
            self._next = position
            await self.refill(position)
        started = self._reads.pop(position)
        self._bytes_ahead -= self._bytes.pop(position, 0)
        if isinstance(started, _Missing):
            raise started.error
        group, index = started
        result = (await group.result())[index]
        if isinstance(result, _Missing):
            raise result.error
        assert isinstance(result, bytes)
        return result

    def started(self, position: int) -> bool:
        """Whether the file at ``position`` is being read (or known to be missing): :meth:`get`
        of it then waits for no lookup."""
        return position in self._reads

    async def beside(self, position: int, send: Callable[[], Awaitable[T]]) -> T:
        """``send()`` of the file at ``position``; the next files are looked up and read meanwhile
        when half of what was read ahead has been taken."""
        if not self.refill_due():
            return await send()
        if not self._lookup_due(position + 1):  # the reads are started now, no task needed
            self._start_reads(position + 1)
            return await send()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.refill, position + 1)
                result = await send()
        except BaseExceptionGroup as group:
            raise first_real(group) from None
        return result

    def refill_due(self) -> bool:
        """Whether half of what is read ahead has been taken (and more is left to read)."""
        if self._next >= len(self._instances):
            return False
        return len(self._reads) <= AHEAD_FILES // 2 and self._bytes_ahead <= AHEAD_BYTES // 2

    async def refill(self, position: int) -> None:
        """Look up and start reading the files from ``position`` on (it first, whatever its size),
        within the bounds; meant to run while the file before it is being sent."""
        await self._look_up(position)
        self._start_reads(position)

    def close(self) -> None:
        """Drop every read not taken (those not started yet never start)."""
        for started in self._reads.values():
            if not isinstance(started, _Missing):
                started[0].cancel()
        self._found.clear()
        self._reads.clear()
        self._bytes.clear()
        self._bytes_ahead = 0
        self._looked_up = 0

    def _lookup_due(self, position: int) -> bool:
        """Whether some of the files to read ahead from ``position`` on are not looked up yet."""
        return max(self._looked_up, self._next) < min(len(self._instances), position + AHEAD_FILES)

    async def _look_up(self, position: int) -> None:
        """Attachments of the next positions, up to :data:`LOOKUP_FILES` of them, in one index
        query, when those to read ahead are not all known."""
        if not self._lookup_due(position):
            return
        first = max(self._looked_up, self._next)
        wanted = range(first, min(len(self._instances), position + LOOKUP_FILES))
        found = await self._services.index.dicom_attachments([self._instances[i] for i in wanted])
        for i in wanted:
            instance = self._instances[i]
            self._found[i] = found.get(instance) or _Missing(
                OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {instance}")
            )
        self._looked_up = wanted.stop

    def _start_reads(self, position: int) -> None:
        """Reads of the looked-up positions from the first not started, within the byte budget."""
        budget = AHEAD_BYTES - self._bytes_ahead
        group: list[tuple[int, Attachment]] = []
        group_bytes = 0
        while self._next in self._found:
            found = self._found[self._next]
            size = found.uncompressed_size if isinstance(found, Attachment) else 0
            if self._next > position and size > budget:
                break
            if group and group_bytes + size > GROUP_BYTES:
                self._start_group(group)
                group, group_bytes = [], 0
            del self._found[self._next]
            if isinstance(found, _Missing):
                self._start_group(group)  # keeps the order: the missing one answers on its own
                group, group_bytes = [], 0
                self._reads[self._next] = found
            else:
                group.append((self._next, found))
                group_bytes += size
                self._bytes[self._next] = size
                self._bytes_ahead += size
            budget -= size
            self._next += 1
        self._start_group(group)

    def _start_group(self, group: list[tuple[int, Attachment]]) -> None:
        if not group:
            return
        pending = offload_ahead(_read_group, self._services.files, [a for _, a in group], self._transform)
        for index, (position, _) in enumerate(group):
            self._reads[position] = (pending, index)
