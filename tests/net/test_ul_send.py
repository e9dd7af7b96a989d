"""Gathered writes of P-DATA: the PDUs of a message sent from views of the dataset arrive byte for
byte as the joined PDUs, across partial writes of a small socket buffer."""

from __future__ import annotations

import os
import socket

import trio

from node.net.ul.association import MAX_SEND_BUFFERS, send_buffers
from node.net.ul.pdu import MESSAGE_COMMAND, p_data_parts, p_data_pdus

MAX_PDU = 4096


async def _received(size: int, stream: trio.SocketStream) -> bytes:
    received = bytearray()
    while len(received) < size:
        received += await stream.receive_some(1 << 16)
    return bytes(received)


async def test_gathered_pdus_arrive_as_joined_ones() -> None:
    dataset = os.urandom(3 * MAX_SEND_BUFFERS * MAX_PDU // 2 + 123)  # more buffers than one write takes
    command = b"\x00" * 90
    expected = b"".join([*p_data_pdus(3, MESSAGE_COMMAND, command, MAX_PDU), *p_data_pdus(3, 0, dataset, MAX_PDU)])
    parts: list[bytes | memoryview] = []
    for headers, fragment in [
        *p_data_parts(3, MESSAGE_COMMAND, command, MAX_PDU),
        *p_data_parts(3, 0, memoryview(dataset), MAX_PDU),
    ]:
        parts += (headers, fragment)
    assert len(parts) > MAX_SEND_BUFFERS
    left, right = trio.socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # many partial writes
    sender, receiver = trio.SocketStream(left), trio.SocketStream(right)
    async with sender, receiver, trio.open_nursery() as nursery:
        nursery.start_soon(send_buffers, sender, parts)
        assert await _received(len(expected), receiver) == expected
