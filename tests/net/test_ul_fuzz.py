"""Mutated PDU streams against the acceptor, some ended by a reset: each one ends its own
connection promptly, none is a bug of ours (no error in the log), and other associations are
served all along.

Deterministic (fixed seed) and bounded in count and time.
"""

from __future__ import annotations

import logging
import random
import socket
import struct

import pytest
import trio

from node.context import NodeContext
from tests.support.ul_peer import RELEASE_RQ_PDU, bare_dataset, echo_pdu, echo_works, request_pdu, store_pdus

SEED = 20261210
CASES = 600
RESETS = 0.1  # share of the cases that end in a connection reset rather than a close
CASE_TIMEOUT = 5.0  # s for the node to close a connection whose peer sent everything and half-closed
TOTAL_TIMEOUT = 120.0
_EXTREMES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x40\x00", b"\x00\x00\x00\x01"]


def _valid_streams() -> tuple[bytes, list[bytes]]:
    """(the association request, whole streams starting with it)."""
    data, uid = bare_dataset("FUZZ", pixels=bytes(range(200)) * 100)
    request = request_pdu(max_pdu=4096)
    return request, [
        request,
        request + echo_pdu() + RELEASE_RQ_PDU,
        request + store_pdus(data, uid, fragment=3000) + RELEASE_RQ_PDU,
        request + echo_pdu(1) + echo_pdu(2, context_id=3) + store_pdus(data, uid, 3, fragment=100),
    ]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(out)) if out else 0
        kind = rng.randrange(6) if out else 3
        if kind == 0:  # flip bits
            out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:  # an extreme length-like value
            out[at : at + 4] = rng.choice(_EXTREMES)
        elif kind == 2:  # cut short
            del out[at:]
        elif kind == 3:  # insert noise
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        elif kind == 4:  # repeat a slice
            out[at:at] = out[at : at + rng.randint(1, 200)]
        else:  # drop a slice
            del out[at : at + rng.randint(1, 50)]
    return bytes(out)


async def _send_and_wait_for_close(port: int, data: bytes, *, reset: bool) -> None:
    """Send ``data`` then half-close and wait for the node to close; or, with ``reset``, reset
    the connection right after sending."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        try:
            await stream.send_all(data)
            if reset:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            await stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the node closed first
        with trio.fail_after(CASE_TIMEOUT):
            try:
                while await stream.receive_some(1 << 16):
                    pass
            except trio.BrokenResourceError:
                pass
    finally:
        await stream.aclose()


async def test_fuzzed_pdu_streams(node: NodeContext, caplog: pytest.LogCaptureFixture) -> None:
    port = node.ports["dicom"]
    rng = random.Random(SEED)
    request, streams = _valid_streams()
    witnessed = 0
    done = trio.Event()

    async def witness() -> None:
        nonlocal witnessed
        while not done.is_set():
            assert await echo_works(port)
            witnessed += 1
            await trio.sleep(0.01)

    with caplog.at_level(logging.WARNING, logger="node"), trio.fail_after(TOTAL_TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(witness)
            for _ in range(CASES):
                stream = rng.choice(streams)
                # Half of the cases keep the association request intact, to reach the P-DATA paths.
                kept = len(request) if rng.random() < 0.5 else 0
                data = stream[:kept] + mutate(rng, stream[kept:])
                await _send_and_wait_for_close(port, data, reset=rng.random() < RESETS)
            done.set()
    assert witnessed > 0
    assert await echo_works(port)
    bugs = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("node")]
    assert not bugs, bugs[0].getMessage()
