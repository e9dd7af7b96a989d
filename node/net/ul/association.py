"""One established association, in either role: DIMSE messages in and out, release and abort.

One task drives it (a watcher task may read while a handler writes, see the SCP). Every PDU
goes out in one ``send_all`` under a cancel shield, bounded in time, so a cancel never leaves
half a PDU on the wire and an A-ABORT can always follow. Each PDU must arrive whole within
``timeout`` of being awaited: neither silence nor a trickle holds an association forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import trio

from ..tcp import read_ready
from .assembly import DatasetPrefix, Message, MessageAssembler
from .dimse import Command, encode_command
from .pdu import (
    A_ABORT,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    MESSAGE_COMMAND,
    MESSAGE_LAST,
    P_DATA_TF,
    PDU_NAMES,
    PDV_HEADER,
    REASON_UNEXPECTED_PDU,
    RECEIVE_SIZE,
    RELEASE_RP_PDU,
    RELEASE_RQ_PDU,
    SOURCE_PROVIDER,
    SOURCE_USER,
    PDUReader,
    PeerClosed,
    ProtocolError,
    abort_pdu,
    p_data_headers,
    p_data_parts,
    parse_pdvs,
)
from .presentation import AcceptedContext

log = logging.getLogger(__name__)

# ARTIM: how long to wait for an A-ASSOCIATE-RQ after a connection opens, and for the peer to
# close after we ended an association (rejected, released or aborted it).
ARTIM_TIMEOUT = 30.0
ABORT_SEND_TIMEOUT = 1.0  # s: an A-ABORT that cannot leave by then is given up, the socket closed
CANCEL_LINGER = 0.5  # s: after an A-ABORT sent because we were cancelled, wait this long for the close
SEND_BATCH = 1 << 20  # bytes of PDUs handed to one write when sending a large dataset
MAX_SEND_BUFFERS = 512  # buffers handed to one write (the system takes up to 1024)
MAX_SENT_PDU = 1 << 20  # bytes: our P-DATA-TF PDUs are never larger
MAX_MESSAGE_ID = 0xFFFF
SPOOL_THRESHOLD = 1 << 20  # bytes of a received dataset kept in memory before it goes to a temporary file


class PeerAborted(Exception):
    """The peer sent an A-ABORT."""

    def __init__(self, source: int, reason: int) -> None:
        super().__init__(f"A-ABORT from the peer (source {source}, reason {reason})")


class ReleaseRequested(Exception):
    """The peer asked to release the association (A-RELEASE-RQ)."""


class TimedOut(Exception):
    """Nothing (or not enough) arrived within the timeout."""


@dataclass(frozen=True)
class Limits:
    """Bounds an association applies to what it receives."""

    timeout: float | None  # for each PDU, None: wait forever
    max_dataset: int  # bytes
    spool_directory: str | None = None
    spool_threshold: int = SPOOL_THRESHOLD


class Association:
    def __init__(
        self,
        stream: trio.SocketStream,
        reader: PDUReader,
        *,
        contexts: Iterable[AcceptedContext],
        peer_max_pdu: int,
        limits: Limits,
        calling_aet: str,
        called_aet: str,
        peer_ip: str,
        dataset_prefix: DatasetPrefix | None = None,
    ) -> None:
        self.stream = stream
        self._reader = reader
        self.contexts = {cx.context_id: cx for cx in contexts}
        # Our PDUs: as large as the peer takes, but never unbounded (0 means no limit).
        self._pdu_size = peer_max_pdu if 0 < peer_max_pdu <= MAX_SENT_PDU else MAX_SENT_PDU
        self.limits = limits
        self.calling_aet = calling_aet
        self.called_aet = called_aet
        self.peer_ip = peer_ip
        self._assembler = MessageAssembler(
            self.contexts,
            max_dataset=limits.max_dataset,
            spool_threshold=limits.spool_threshold,
            spool_directory=limits.spool_directory,
            dataset_prefix=dataset_prefix,
        )
        self._ready: deque[Message] = deque()
        self._message_id = 0
        self.closed = False
        # Called once the association is over, before any wait for the peer to close: what it
        # held (an association slot) is free from then on.
        self.on_close: Callable[[], None] | None = None

    def next_message_id(self) -> int:
        """A message ID for a request we send, unique on this association (until it wraps)."""
        self._message_id = self._message_id % MAX_MESSAGE_ID + 1
        return self._message_id

    # -- sending ---------------------------------------------------------------------------------

    async def send_pdu(self, data: bytes) -> None:
        """One write, whole or not at all as far as cancellation goes (one scope: shielded from
        outside, bounded in time by its own deadline)."""
        await self._send_parts([data])

    async def _send_parts(self, parts: Sequence[bytes | memoryview], size: int | None = None) -> None:
        """Whole PDUs, given as their parts in order (``size`` bytes in all, if known), written
        as :meth:`send_pdu` writes one.

        What the socket takes at once is written without a wait (most messages: the peer reads
        as we write); only the rest is awaited, under the shield and the deadline."""
        try:
            rest = write_now(self.stream, parts, size)
        except OSError as error:
            raise PeerClosed(f"connection lost while sending: {error}") from error
        if not rest:
            return
        deadline = trio.current_time() + (self.limits.timeout or ARTIM_TIMEOUT)
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            try:
                await send_buffers(self.stream, rest)
            except (*_GONE, OSError) as error:
                raise PeerClosed(f"connection lost while sending: {error}") from error
        if scope.cancelled_caught:
            raise TimedOut("the peer stopped reading")

    def _message_parts(
        self, context_id: int, command: bytes, dataset: bytes | memoryview | None
    ) -> Iterator[tuple[bytes, bytes | memoryview]]:
        yield from p_data_parts(context_id, MESSAGE_COMMAND, command, self._pdu_size)
        if dataset:
            yield from p_data_parts(context_id, 0, memoryview(dataset), self._pdu_size)

    async def send_message(self, context_id: int, command: Command, dataset: bytes | memoryview | None = None) -> None:
        """A DIMSE message; its PDUs go out in writes of about :data:`SEND_BATCH` bytes, the
        dataset's bytes straight from ``dataset`` (views of it, never copied here)."""
        encoded = encode_command(command)
        room = self._pdu_size - PDV_HEADER.size
        if len(encoded) <= room and (not dataset or len(dataset) <= room):
            # The usual message (a response, a small instance): a PDU per part, in one write.
            parts: list[bytes | memoryview] = [
                p_data_headers(context_id, MESSAGE_COMMAND | MESSAGE_LAST, len(encoded)),
                encoded,
            ]
            if dataset:
                parts += (p_data_headers(context_id, MESSAGE_LAST, len(dataset)), dataset)
            await self._send_parts(parts, sum(map(len, parts)))
            return
        batch: list[bytes | memoryview] = []
        size = 0
        for headers, fragment in self._message_parts(context_id, encoded, dataset):
            batch += (headers, fragment)
            size += len(headers) + len(fragment)
            if size >= SEND_BATCH or len(batch) >= MAX_SEND_BUFFERS:
                await self._send_parts(batch, size)
                batch, size = [], 0
        if batch:
            await self._send_parts(batch, size)

    # -- receiving -------------------------------------------------------------------------------

    async def _read_pdu(self, timeout: float | None) -> tuple[int, bytes]:
        # Often the next PDU came with the last one, or while we were sending: no deadline to set.
        waiting = await self._reader.read_waiting()
        if waiting is not None:
            return waiting
        if timeout is None:
            return await self._reader.read()
        with trio.move_on_after(timeout):
            return await self._reader.read()
        raise TimedOut(f"no complete PDU within {timeout} s")

    async def receive_message(self, *, timeout: float | Literal["default"] | None = "default") -> Message:
        """The next DIMSE message; raises :class:`ReleaseRequested`, :class:`PeerAborted`,
        :class:`PeerClosed`, :class:`ProtocolError` or :class:`TimedOut` instead.

        Each PDU must arrive within ``timeout`` (by default that of the association's limits).
        """
        pdu_timeout = self.limits.timeout if timeout == "default" else timeout
        while not self._ready:
            pdu_type, body = await self._read_pdu(pdu_timeout)
            if pdu_type == P_DATA_TF:
                for context_id, control, fragment in parse_pdvs(body):
                    message = await self._assembler.feed(context_id, control, fragment)
                    if message is not None:
                        self._ready.append(message)
            elif pdu_type == A_RELEASE_RQ:
                raise ReleaseRequested()
            elif pdu_type == A_ABORT:
                raise PeerAborted(body[2], body[3])
            else:
                raise ProtocolError(REASON_UNEXPECTED_PDU, f"unexpected {PDU_NAMES[pdu_type]}")
        return self._ready.popleft()

    # -- ending ----------------------------------------------------------------------------------

    async def answer_release(self) -> None:
        """The peer asked to release: answer, then let it close (acceptor side, or the requestor's
        collision)."""
        await self.send_pdu(RELEASE_RP_PDU)
        await self._await_close(ARTIM_TIMEOUT)

    async def release(self) -> None:
        """Ask the peer to release and wait for its answer (requestor side).

        Messages still arriving are dropped; if the peer asks to release at the same time
        (collision), we answer it and still wait for its answer to ours.
        """
        await self.send_pdu(RELEASE_RQ_PDU)
        with trio.move_on_after(self.limits.timeout or ARTIM_TIMEOUT) as scope:
            while True:
                pdu_type, _ = await self._reader.read()
                if pdu_type == A_RELEASE_RP:
                    break
                if pdu_type == A_RELEASE_RQ:
                    await self.send_pdu(RELEASE_RP_PDU)
                elif pdu_type == A_ABORT:
                    break
                elif pdu_type != P_DATA_TF:
                    raise ProtocolError(REASON_UNEXPECTED_PDU, f"unexpected {PDU_NAMES[pdu_type]} in release")
        if scope.cancelled_caught:
            raise TimedOut("no A-RELEASE-RP")
        await self.aclose()

    async def abort(self, source: int = SOURCE_USER, reason: int = 0, *, linger: float = ARTIM_TIMEOUT) -> None:
        """Send an A-ABORT (bounded in time, never cancelled midway), then let the peer close."""
        if self.closed:
            return
        await send_abort(self.stream, source, reason)
        await self._await_close(linger)

    async def cancelled_abort(self) -> None:
        """We were cancelled: A-ABORT at once, a short shielded wait for the close, no more."""
        if self.closed:
            return
        await send_abort(self.stream, SOURCE_USER)
        await self._await_close(CANCEL_LINGER, shield=True)

    async def protocol_abort(self, error: ProtocolError) -> None:
        log.warning("association with %s (%s) aborted: %s", self.calling_aet, self.peer_ip, error)
        await self.abort(SOURCE_PROVIDER, error.reason)

    async def _await_close(self, limit: float, *, shield: bool = False) -> None:
        """Wait (at most ``limit``) for the peer to close, reading and dropping whatever comes, then close.

        Closing with unread bytes would make the kernel reset the connection, which may destroy
        our last PDU before the peer reads it.
        """
        self._end()
        await drain_and_close(self.stream, limit, shield=shield)

    def _end(self) -> None:
        self.closed = True
        self._assembler.close()
        if self.on_close is not None:
            self.on_close()
            self.on_close = None

    async def aclose(self) -> None:
        self._end()
        with trio.CancelScope(shield=True):
            await self.stream.aclose()


_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


def write_now(
    stream: trio.SocketStream, buffers: Sequence[bytes | memoryview], size: int | None = None
) -> list[bytes | memoryview]:
    """Write what the socket takes of ``buffers`` at once, in one gathered write, without a wait
    or a checkpoint (two passes of the scheduler saved per message); what is left to write.

    Raises OSError when the peer is gone. The association's writes come from one task at a
    time; a caller that sends message after message without waiting for the peer in between
    (C-FIND's answers) checkpoints itself, so that the other tasks still run.
    """
    try:
        sent = os.writev(stream.socket.fileno(), buffers[:MAX_SEND_BUFFERS])
    except BlockingIOError:
        return list(buffers)
    return [] if sent == size else _after(buffers, sent)


def _after(buffers: Sequence[bytes | memoryview], sent: int) -> list[bytes | memoryview]:
    """What is left of ``buffers`` once their first ``sent`` bytes went out."""
    first = 0
    while first < len(buffers) and sent >= len(buffers[first]):
        sent -= len(buffers[first])
        first += 1
    rest = list(buffers[first:])
    if sent:
        rest[0] = memoryview(rest[0])[sent:]
    return rest


async def send_buffers(stream: trio.SocketStream, buffers: Sequence[bytes | memoryview]) -> None:
    """Write every buffer, in order, with as few system calls as the socket takes (one gathered
    write each, no joining copy); raises what the socket raises (OSError when the peer is gone)."""
    if len(buffers) == 1:
        await stream.send_all(buffers[0])
        return
    pending = list(buffers)
    while pending:
        sent = await stream.socket.sendmsg(pending[:MAX_SEND_BUFFERS])
        pending = _after(pending, sent)


async def send_last(stream: trio.SocketStream, pdu: bytes) -> None:
    """A PDU after which we only wait for the close: shielded, bounded in time, dropped if the
    peer is gone already."""
    with trio.CancelScope(shield=True), trio.move_on_after(ABORT_SEND_TIMEOUT), contextlib.suppress(*_GONE):
        await stream.send_all(pdu)


async def send_abort(stream: trio.SocketStream, source: int, reason: int = 0) -> None:
    await send_last(stream, abort_pdu(source, reason))


async def drain_and_close(stream: trio.SocketStream, limit: float, *, shield: bool = False) -> None:
    """Read and drop what the peer still sends until it closes (at most ``limit``), then close.

    Unshielded, a cancel cuts the wait short (the node is stopping); ``shield`` is for the
    short linger after an A-ABORT sent because we were cancelled. The socket is read straight
    from its descriptor: this runs once per association, after its last PDU, and Trio's
    stream methods cost a checkpoint each.
    """
    sock = stream.socket
    try:
        with (
            trio.CancelScope(shield=shield, deadline=trio.current_time() + limit),
            contextlib.suppress(*_GONE, OSError),
        ):
            sock.shutdown(socket.SHUT_WR)
            while (data := read_ready(sock, RECEIVE_SIZE)) != b"":
                if data is None:
                    await trio.lowlevel.wait_readable(sock)
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()
