"""DIMSE messages reassembled from PDVs, with the sequencing rules pynetdicom does not check,
and datasets spooled to a temporary file once they grow large.

A message is its command fragments, then (if the command says so) its dataset fragments, all
on one accepted presentation context. Anything else (a dataset fragment first, a command
fragment in the middle of a dataset, a context that changes, a context never accepted) is a
protocol error. Memory per association stays bounded: a dataset keeps at most
``spool_threshold`` bytes in memory before they go to disk, and one larger than
``max_dataset`` is received to the end but not kept.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

import trio

from ...offload import offload
from .dimse import MAX_COMMAND_SET, Command, decode_command, describe, has_dataset
from .pdu import MESSAGE_COMMAND, MESSAGE_LAST, REASON_INVALID_PARAMETER, REASON_UNEXPECTED_PARAMETER, ProtocolError
from .presentation import AcceptedContext

DatasetPrefix = Callable[[AcceptedContext, Command], bytes]


@dataclass
class Message:
    """A complete DIMSE message.

    ``dataset`` is None without a dataset, or when it was larger than allowed (``oversized``);
    it starts with whatever the assembler's ``dataset_prefix`` gave for this command.
    """

    context_id: int
    command: Command
    dataset: bytes | None = None
    oversized: bool = False

    @property
    def command_field(self) -> int:
        return int(self.command["CommandField"])

    def __str__(self) -> str:
        return describe(self.command)


def _temporary_file(directory: str | None) -> IO[bytes]:
    """An anonymous file (gone with its handle, even after a crash) in ``directory``."""
    if directory is not None:
        os.makedirs(directory, exist_ok=True)
    return tempfile.TemporaryFile(prefix="dicom-", dir=directory)


class _Dataset:
    """The dataset of one message so far: in memory, then in an anonymous temporary file."""

    def __init__(self, prefix: bytes, limit: int, spool_threshold: int, directory: str | None) -> None:
        self._parts: list[bytes | memoryview] = [prefix] if prefix else []  # fragments: views into their PDUs
        self._buffered = len(prefix)
        self._received = 0
        self._limit = limit
        self._threshold = spool_threshold
        self._directory = directory
        self._file: IO[bytes] | None = None
        self.oversized = False

    async def append(self, fragment: memoryview) -> None:
        self._received += len(fragment)
        if self.oversized:
            return
        if self._received > self._limit:
            self.oversized = True
            self.close()
            self._parts = []
            return
        self._parts.append(fragment)
        self._buffered += len(fragment)
        if self._buffered >= self._threshold:
            await self._spill()

    async def _spill(self) -> None:
        """Move what is in memory to the file; shielded, so a cancel never drops a fragment."""
        data, self._parts, self._buffered = b"".join(self._parts), [], 0
        with trio.CancelScope(shield=True):
            if self._file is None:
                self._file = await offload(_temporary_file, self._directory)
            await offload(self._file.write, data)

    async def value(self) -> bytes | None:
        if self.oversized:
            return None
        if self._file is None:
            return b"".join(self._parts)
        await self._spill()
        file = self._file
        with trio.CancelScope(shield=True):
            await offload(file.seek, 0)
            data = await offload(file.read)
        self.close()
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class MessageAssembler:
    """Feeds on PDVs; returns each message once its last fragment arrived."""

    def __init__(
        self,
        contexts: Mapping[int, AcceptedContext],
        *,
        max_dataset: int,
        spool_threshold: int,
        spool_directory: str | None,
        dataset_prefix: DatasetPrefix | None = None,
    ) -> None:
        self._contexts = contexts
        self._max_dataset = max_dataset
        self._spool_threshold = spool_threshold
        self._spool_directory = spool_directory
        self._prefix = dataset_prefix
        self._reset()

    def _reset(self) -> None:
        self._context_id: int | None = None
        self._command_parts: list[bytes] = []
        self._command_size = 0
        self._command: Command | None = None  # complete, its dataset still coming
        self._dataset: _Dataset | None = None

    def close(self) -> None:
        """Drop a message in progress (the association ends)."""
        if self._dataset is not None:
            self._dataset.close()
        self._reset()

    async def feed(self, context_id: int, control: int, fragment: memoryview) -> Message | None:
        if context_id not in self._contexts:
            raise ProtocolError(REASON_INVALID_PARAMETER, f"PDV on presentation context {context_id}, not accepted")
        if self._context_id is None:
            self._context_id = context_id
        elif context_id != self._context_id:
            raise ProtocolError(REASON_UNEXPECTED_PARAMETER, "presentation context changed within a message")
        if control & MESSAGE_COMMAND:
            return self._command_fragment(context_id, control, fragment)
        return await self._dataset_fragment(context_id, control, fragment)

    def _command_fragment(self, context_id: int, control: int, fragment: memoryview) -> Message | None:
        if self._command is not None:
            raise ProtocolError(REASON_UNEXPECTED_PARAMETER, "command fragment within a dataset")
        self._command_size += len(fragment)
        if self._command_size > MAX_COMMAND_SET:
            raise ProtocolError(REASON_INVALID_PARAMETER, f"command set over {MAX_COMMAND_SET} bytes")
        self._command_parts.append(bytes(fragment))
        if not control & MESSAGE_LAST:
            return None
        command = decode_command(b"".join(self._command_parts))
        if not has_dataset(command):
            self._reset()
            return Message(context_id, command)
        self._command = command
        prefix = self._prefix(self._contexts[context_id], command) if self._prefix is not None else b""
        self._dataset = _Dataset(prefix, self._max_dataset, self._spool_threshold, self._spool_directory)
        return None

    async def _dataset_fragment(self, context_id: int, control: int, fragment: memoryview) -> Message | None:
        if self._command is None or self._dataset is None:
            raise ProtocolError(REASON_UNEXPECTED_PARAMETER, "dataset fragment before its command")
        dataset = self._dataset
        await dataset.append(fragment)
        if not control & MESSAGE_LAST:
            return None
        command = self._command
        try:
            data = await dataset.value()
        finally:
            dataset.close()
            self._reset()
        return Message(context_id, command, data, oversized=dataset.oversized)
