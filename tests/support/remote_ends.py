"""Remote ends for the tests of our SCU routes: a port that refuses connections, one that takes them
and never says a word, and a verification SCP that answers with the status it is told
(DCMTK's storescp is in :mod:`.storescp`)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import trio
from pydicom.uid import ExplicitVRLittleEndian

from node.net.ul import acse
from node.net.ul.dimse import decode_command, encode_command, response
from node.net.ul.negotiate import ContextPolicy

from .ul_peer import LAST_COMMAND_FRAGMENT, P_DATA, RELEASE_RP_PDU, RELEASE_RQ, p_data, read_pdu

SILENT_BACKLOG = 8  # connections the silent port holds before refusing more
MAX_PDU = 16384
ASSOCIATE_RQ = 1  # PDU type
_PDV_HEADER = 6  # a PDV's length (4 bytes), presentation context and message control header


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port held by a socket that does not listen: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that listens and never accepts: the kernel completes each connection, and
    nothing is ever read from it nor sent on it."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(SILENT_BACKLOG)
        yield int(listening.getsockname()[1])


async def _answer_echo_with(status: int, stream: trio.SocketStream) -> None:
    """Accept the association, answer its C-ECHO with ``status``, then its release."""
    request = await read_pdu(stream)
    assert request is not None and request[0] == ASSOCIATE_RQ, request
    proposed = acse.decode_request(request[1])
    results, roles, _ = ContextPolicy((ExplicitVRLittleEndian,), accept_unknown=False).negotiate(proposed)
    await stream.send_all(acse.encode_accept(proposed, results, roles, MAX_PDU))
    echo = await read_pdu(stream)
    assert echo is not None and echo[0] == P_DATA, echo
    context_id = echo[1][4]  # the PDV's presentation context, after its 4-byte length
    answer = response(decode_command(echo[1][_PDV_HEADER:]), status)
    await stream.send_all(p_data(context_id, LAST_COMMAND_FRAGMENT, encode_command(answer)))
    release = await read_pdu(stream)
    assert release is not None and release[0] == RELEASE_RQ, release
    await stream.send_all(RELEASE_RP_PDU)


async def echo_answered_with(nursery: trio.Nursery, status: int) -> int:
    """A one-association verification SCP on a free port that answers the C-ECHO with ``status``."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def serve() -> None:
        stream = await listeners[0].accept()
        await listeners[0].aclose()
        async with stream:
            await _answer_echo_with(status, stream)

    nursery.start_soon(serve)
    return int(listeners[0].socket.getsockname()[1])
