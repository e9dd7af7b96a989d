"""PDU framing: PDUs read off a byte stream with bounded lengths, the fixed-size PDUs,
P-DATA-TF built and taken apart, and the items of the association PDUs walked.

Nothing here trusts a length field: a PDU is buffered only as its bytes arrive and only up to
the cap its type allows, so a peer announcing 4 GB gets an A-ABORT, not an allocation. Every
malformed input raises :class:`ProtocolError`, which carries the A-ABORT reason to send.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import trio

from ..tcp import read_ready

# PDU types.
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDU_NAMES = {
    A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    P_DATA_TF: "P-DATA-TF",
    A_RELEASE_RQ: "A-RELEASE-RQ",
    A_RELEASE_RP: "A-RELEASE-RP",
    A_ABORT: "A-ABORT",
}

# A-ABORT sources and the reasons a service provider gives.
SOURCE_USER = 0x00
SOURCE_PROVIDER = 0x02
REASON_NOT_SPECIFIED = 0x00
REASON_UNRECOGNIZED_PDU = 0x01
REASON_UNEXPECTED_PDU = 0x02
REASON_UNEXPECTED_PARAMETER = 0x05
REASON_INVALID_PARAMETER = 0x06

HEADER = struct.Struct(">BxI")  # PDU type, reserved, length of what follows
ITEM_HEADER = struct.Struct(">BxH")  # item type, reserved, item length
PDV_HEADER = struct.Struct(">IBB")  # PDV item length, presentation context ID, message control header
# The PDU header and the PDV header of a P-DATA-TF carrying one PDV, packed at once.
P_DATA_HEADERS = struct.Struct(">BxIIBB")
FIXED_BODY = 4  # A-ASSOCIATE-RJ, A-RELEASE-RQ/RP and A-ABORT bodies are exactly this long

# Bounds on the body of each PDU type, whatever its length field says. Association PDUs with the
# 128 contexts a requestor may propose, each with a dozen transfer syntaxes, stay far below.
MAX_ASSOCIATE_BODY = 1 << 20
# P-DATA-TF bodies from a peer that ignores our Maximum Length are tolerated up to this.
MAX_P_DATA_BODY = 4 << 20
RECEIVE_SIZE = 1 << 18
YIELD_EVERY = 8  # reads in a row that need no wait, before one checkpoints all the same
COMPACT_AFTER = 1 << 20  # bytes already read that stay at the head of the buffer before it is compacted

MESSAGE_COMMAND = 0x01  # message control header bits
MESSAGE_LAST = 0x02
_SMALLEST_PDV_ITEM = 2  # context ID and message control header, with an empty fragment


class ProtocolError(Exception):
    """The peer broke the protocol: abort the association (provider source) with ``reason``."""

    def __init__(self, reason: int, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PeerClosed(Exception):
    """The peer closed the connection (possibly in the middle of a PDU)."""


def _fixed(pdu_type: int, body: bytes) -> bytes:
    return HEADER.pack(pdu_type, len(body)) + body


RELEASE_RQ_PDU = _fixed(A_RELEASE_RQ, bytes(FIXED_BODY))
RELEASE_RP_PDU = _fixed(A_RELEASE_RP, bytes(FIXED_BODY))


def abort_pdu(source: int, reason: int = REASON_NOT_SPECIFIED) -> bytes:
    """An A-ABORT; the reason is meaningful for the provider source only."""
    return _fixed(A_ABORT, bytes([0, 0, source, reason if source == SOURCE_PROVIDER else 0]))


def reject_pdu(result: int, source: int, reason: int) -> bytes:
    return _fixed(A_ASSOCIATE_RJ, bytes([0, result, source, reason]))


def p_data_limit(max_pdu: int) -> int:
    """What we read of a P-DATA-TF: our announced maximum, and more from peers that exceed it."""
    return max(max_pdu, MAX_P_DATA_BODY)


def _body_limit(pdu_type: int, p_data_limit: int) -> int:
    if pdu_type == P_DATA_TF:
        return p_data_limit
    if pdu_type in (A_ASSOCIATE_RQ, A_ASSOCIATE_AC):
        return MAX_ASSOCIATE_BODY
    return FIXED_BODY


class PDUReader:
    """Reads whole PDUs from a stream; the bytes of the next PDU stay buffered across calls.

    Cancelling :meth:`read` loses nothing: a later call goes on from the same byte.
    """

    def __init__(
        self, stream: trio.abc.ReceiveStream, *, p_data_limit: int, after_receive: Callable[[], None] | None = None
    ) -> None:
        self._stream = stream
        # A socket is read straight from its descriptor: a DIMSE exchange waits for each answer,
        # and Trio's stream and socket wrappers around that one read cost as much as the read.
        self._socket = stream.socket if isinstance(stream, trio.SocketStream) else None
        self._buffer = bytearray()
        self._start = 0  # first unread byte of the buffer
        self.p_data_limit = p_data_limit
        self._after_receive = after_receive
        self._unyielded = 0  # reads in a row that found bytes waiting, without a checkpoint

    async def _fill(self) -> None:
        try:
            if self._socket is None:
                data, waited = await self._stream.receive_some(RECEIVE_SIZE), True
            else:
                data, waited = await self._receive()
        except (trio.BrokenResourceError, OSError) as error:  # reset by the peer, or the connection broke
            raise PeerClosed(f"connection reset by the peer: {error}") from error
        await self._keep(data, waited)

    async def _keep(self, data: bytes | bytearray, waited: bool) -> None:
        """Buffer what was read (nothing: the peer closed)."""
        if not data:
            raise PeerClosed("connection closed by the peer")
        if self._after_receive is not None:
            self._after_receive()
        if self._start and (self._start == len(self._buffer) or self._start >= COMPACT_AFTER):
            del self._buffer[: self._start]  # what was read before: free when nothing else is buffered
            self._start = 0
        self._buffer += data
        if waited:
            self._unyielded = 0
            return
        # Bytes that were waiting: let the other tasks run after a few such reads in a row (the
        # bytes are buffered, a cancel here loses none). Yielding after each one would cost a
        # pass of the scheduler per DIMSE answer that came while we were still sending.
        self._unyielded += 1
        if self._unyielded >= YIELD_EVERY:
            self._unyielded = 0
            await trio.lowlevel.checkpoint()

    async def _receive(self) -> tuple[bytes, bool]:
        """What the socket holds, once it holds something, and whether it had to be waited for
        (the wait is a checkpoint)."""
        sock = self._socket
        assert sock is not None
        data = read_ready(sock, RECEIVE_SIZE)
        if data is not None:
            return data, False
        while data is None:  # None again: woken for nothing
            await trio.lowlevel.wait_readable(sock)
            data = read_ready(sock, RECEIVE_SIZE)
        return data, True

    async def read(self) -> tuple[int, bytes]:
        """The next PDU: (type, body after the 6-byte header)."""
        while self._unread() < HEADER.size:
            await self._fill()
        size = self._size_of_next()
        # Counted from the first unread byte, never as a place in the buffer: a fill may
        # compact the buffer, moving that byte to its front.
        while self._unread() < size:
            await self._fill()
        return self._take(size)

    def read_buffered(self) -> tuple[int, bytes] | None:
        """The next PDU if it has arrived whole already (no wait, no checkpoint), else None."""
        if self._unread() < HEADER.size:
            return None
        size = self._size_of_next()
        return self._take(size) if self._unread() >= size else None

    async def read_waiting(self) -> tuple[int, bytes] | None:
        """The next PDU if it is buffered whole, or once what the socket holds now is buffered
        too; None when it has not all arrived (nothing is waited for)."""
        pdu = self.read_buffered()
        if pdu is not None or self._socket is None:
            return pdu
        try:
            data = read_ready(self._socket, RECEIVE_SIZE)
        except OSError as error:
            raise PeerClosed(f"connection reset by the peer: {error}") from error
        if data is None:
            return None
        await self._keep(data, waited=False)
        return self.read_buffered()

    def _unread(self) -> int:
        return len(self._buffer) - self._start

    def _size_of_next(self) -> int:
        """The size of the next PDU, header included, once its header is checked (its header is there)."""
        pdu_type, length = HEADER.unpack_from(self._buffer, self._start)
        if pdu_type not in PDU_NAMES:
            raise ProtocolError(REASON_UNRECOGNIZED_PDU, f"unknown PDU type 0x{pdu_type:02x}")
        limit = _body_limit(pdu_type, self.p_data_limit)
        if length > limit or (limit == FIXED_BODY and length != FIXED_BODY):
            raise ProtocolError(REASON_INVALID_PARAMETER, f"{PDU_NAMES[pdu_type]} of {length} bytes")
        return HEADER.size + length

    def _take(self, size: int) -> tuple[int, bytes]:
        """The next PDU, of ``size`` bytes (all buffered)."""
        start, end = self._start, self._start + size
        pdu_type = self._buffer[start]
        body = bytes(memoryview(self._buffer)[start + HEADER.size : end])  # one copy, not two
        self._start = end
        return pdu_type, body


# -- P-DATA-TF --------------------------------------------------------------------------


def parse_pdvs(body: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """(presentation context ID, message control header, fragment) of each PDV of a P-DATA-TF."""
    view = memoryview(body)
    position, end = 0, len(body)
    if not end:
        raise ProtocolError(REASON_INVALID_PARAMETER, "P-DATA-TF without any PDV")
    while position < end:
        if end - position < PDV_HEADER.size:
            raise ProtocolError(REASON_INVALID_PARAMETER, "PDV header cut short")
        length, context_id, control = PDV_HEADER.unpack_from(body, position)
        if length < _SMALLEST_PDV_ITEM or position + 4 + length > end:
            raise ProtocolError(REASON_INVALID_PARAMETER, f"PDV of {length} bytes in {end} bytes")
        yield context_id, control, view[position + PDV_HEADER.size : position + 4 + length]
        position += 4 + length


def p_data_parts(
    context_id: int, control: int, payload: bytes | memoryview, max_pdu: int
) -> Iterator[tuple[bytes, bytes | memoryview]]:
    """One message part (command or dataset) as P-DATA-TF PDUs of one PDV each, not joined:
    (PDU and PDV headers, fragment) of each, the fragment a slice of ``payload`` (no copy).

    ``max_pdu`` is the peer's Maximum Length Received (0: unlimited), which bounds the PDV item;
    the last fragment carries the "last" bit. Fragments as pynetdicom makes them, byte for byte.
    """
    step = max_pdu - PDV_HEADER.size if max_pdu else max(len(payload), 1)
    total = len(payload)
    offset = 0
    while True:
        fragment = payload[offset : offset + step]
        offset += step
        last = offset >= total
        flags = control | MESSAGE_LAST if last else control
        yield p_data_headers(context_id, flags, len(fragment)), fragment
        if last:
            return


def p_data_headers(context_id: int, control: int, fragment_length: int) -> bytes:
    """The headers of a P-DATA-TF holding one PDV of ``fragment_length`` bytes."""
    return P_DATA_HEADERS.pack(P_DATA_TF, fragment_length + 6, fragment_length + 2, context_id, control)


def p_data_pdus(context_id: int, control: int, payload: bytes | memoryview, max_pdu: int) -> Iterator[bytes]:
    """The PDUs of :func:`p_data_parts`, each joined into one bytes object."""
    for headers, fragment in p_data_parts(context_id, control, payload, max_pdu):
        yield headers + fragment


# -- items of the association PDUs ------------------------------------------------------------------


def walk_items(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(item type, first byte, end) of each item between ``start`` and ``end``, lengths checked."""
    position = start
    while position < end:
        if end - position < ITEM_HEADER.size:
            raise ProtocolError(REASON_INVALID_PARAMETER, "item header cut short")
        item_type, length = ITEM_HEADER.unpack_from(data, position)
        value = position + ITEM_HEADER.size
        if value + length > end:
            raise ProtocolError(REASON_INVALID_PARAMETER, f"item 0x{item_type:02x} of {length} bytes overruns")
        yield item_type, value, value + length
        position = value + length
