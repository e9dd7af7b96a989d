"""Gathered writes of P-DATA: the PDUs of a message sent from views of the dataset arrive byte for
byte as the joined PDUs, across partial writes of a small socket buffer; and reads of PDUs
that wait in the socket."""

from __future__ import annotations

import os
import socket

import trio
import trio.testing

from node.net.ul.association import MAX_SEND_BUFFERS, Association, Limits, send_buffers
from node.net.ul.dimse import C_STORE_RQ, encode_command
from node.net.ul.pdu import (
    COMPACT_AFTER,
    MESSAGE_COMMAND,
    P_DATA_TF,
    YIELD_EVERY,
    PDUReader,
    p_data_limit,
    p_data_parts,
    p_data_pdus,
)

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


def _association(stream: trio.SocketStream) -> Association:
    reader = PDUReader(stream, p_data_limit=p_data_limit(MAX_PDU))
    limits = Limits(timeout=5.0, max_dataset=1 << 20)
    return Association(
        stream, reader, contexts=[], peer_max_pdu=MAX_PDU, limits=limits, calling_aet="A", called_aet="B", peer_ip="::1"
    )


async def test_messages_arrive_as_their_joined_pdus() -> None:
    """A message of one PDU per part (framed without the generators) and one of many PDUs give
    the bytes of :func:`p_data_pdus`, in order."""
    command = {"CommandField": C_STORE_RQ, "MessageID": 7, "AffectedSOPClassUID": "1.2.3", "CommandDataSetType": 1}
    small, large = os.urandom(MAX_PDU - 6), os.urandom(3 * MAX_PDU + 5)
    expected = b"".join(
        [
            *p_data_pdus(5, MESSAGE_COMMAND, encode_command(command), MAX_PDU),
            *p_data_pdus(5, 0, small, MAX_PDU),
            *p_data_pdus(5, MESSAGE_COMMAND, encode_command(command), MAX_PDU),
            *p_data_pdus(5, 0, large, MAX_PDU),
            *p_data_pdus(5, MESSAGE_COMMAND, encode_command(command), MAX_PDU),
        ]
    )
    left, right = trio.socket.socketpair()
    sender, receiver = trio.SocketStream(left), trio.SocketStream(right)
    association = _association(sender)
    async with sender, receiver, trio.open_nursery() as nursery:

        async def send_all() -> None:
            await association.send_message(5, command, small)
            await association.send_message(5, command, memoryview(large))
            await association.send_message(5, command)

        nursery.start_soon(send_all)
        assert await _received(len(expected), receiver) == expected


async def test_pdus_waiting_in_the_socket_still_let_other_tasks_run() -> None:
    """A read that finds its bytes waiting skips the scheduler, but only so many in a row: a
    task beside the reader runs every few reads, and a cancel then loses no byte."""
    count = 10 * YIELD_EVERY
    pdu = b"".join(p_data_pdus(1, MESSAGE_COMMAND, bytes(20), MAX_PDU))
    plain, ours = socket.socketpair()  # the peer writes without a checkpoint of ours
    with plain:
        receiver = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        reader = PDUReader(receiver, p_data_limit=p_data_limit(MAX_PDU))
        turns = 0

        async def beside() -> None:
            nonlocal turns
            while True:
                turns += 1
                await trio.lowlevel.checkpoint()

        async with receiver, trio.open_nursery() as nursery:
            nursery.start_soon(beside)
            await trio.lowlevel.checkpoint()  # it has started
            before = turns
            for _ in range(count):
                plain.send(pdu)
                assert await reader.read_waiting() == (P_DATA_TF, pdu[6:])
            assert count // YIELD_EVERY - 1 <= turns - before <= count // YIELD_EVERY + 1
            nursery.cancel_scope.cancel()
            with trio.CancelScope() as scope:
                scope.cancel()
                for _ in range(YIELD_EVERY):
                    plain.send(pdu)
                    assert await reader.read_waiting() == (P_DATA_TF, pdu[6:])
            assert scope.cancelled_caught
            assert reader.read_buffered() == (P_DATA_TF, pdu[6:])  # the PDU read when the cancel came


async def test_pdu_completed_after_the_buffer_is_compacted() -> None:
    """A PDU whose header came before the reader caught up with the peer, and whose body came
    after more than COMPACT_AFTER bytes were read, is read whole: the compaction that the rest
    of its body triggers moves the bytes already buffered, and the read follows them."""
    pdu = b"".join(p_data_pdus(1, 0, os.urandom(MAX_PDU - 6), MAX_PDU))
    cut = len(pdu) // 2  # the peer's writes end within a PDU: the buffer is never read empty
    plain, ours = socket.socketpair()  # the peer writes without a checkpoint of ours
    with plain:
        receiver = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        reader = PDUReader(receiver, p_data_limit=p_data_limit(MAX_PDU))
        plain.sendall(pdu[:cut])
        read = 0
        while read <= COMPACT_AFTER:  # PDU after PDU, the next one's first half already there
            plain.sendall(pdu[cut:] + pdu[:cut])
            assert await reader.read_waiting() == (P_DATA_TF, pdu[6:])
            read += len(pdu)
        received: list[tuple[int, bytes]] = []

        async def read_next() -> None:
            received.append(await reader.read())

        async with receiver, trio.open_nursery() as nursery:
            nursery.start_soon(read_next)
            await trio.testing.wait_all_tasks_blocked()  # caught up: waiting for the rest of the body
            plain.sendall(pdu[cut:])
            await trio.testing.wait_all_tasks_blocked()
            assert received == [(P_DATA_TF, pdu[6:])]
