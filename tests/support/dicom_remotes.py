"""Remote DICOM nodes that misbehave on purpose, for the transfer tests: one that accepts a
connection and never answers, one that answers some C-STOREs and then falls silent, one that
rejects associations for now. All run on Trio in the test's nursery, byte by byte, and record
what reached them (A-ABORT, close, the SOP instances they acknowledged)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import trio
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from node.net.ul import acse
from node.net.ul.dimse import SUCCESS, decode_command, encode_command, response
from node.net.ul.negotiate import ContextPolicy
from node.net.ul.pdu import parse_pdvs

from .ul_peer import ABORT, ASSOCIATE_RJ, LAST_COMMAND_FRAGMENT, P_DATA, RELEASE_RP, RELEASE_RQ, p_data, pdu, read_pdu

COMMAND_BIT, LAST_BIT = 0x01, 0x02  # PDV message control header
REJECTED_TRANSIENT, SOURCE_PROVIDER_PRESENTATION, LOCAL_LIMIT = 2, 3, 2
MAX_PDU = 16384
ACCEPTED_SYNTAXES = (str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian))  # what the remote takes


class Behaviour(enum.Enum):
    SILENT = "silent"  # accepts the TCP connection, reads, never answers
    STORE = "store"  # accepts associations and answers C-STOREs (up to ``answered`` per association)
    REJECT_FOR_NOW = "reject-for-now"  # A-ASSOCIATE-RJ, transient (local limit exceeded)


@dataclass
class Connection:
    """What one connection saw."""

    stored: list[str] = field(default_factory=list)  # SOP instance UIDs acknowledged
    stalled: trio.Event = field(default_factory=trio.Event)  # a request arrived that is never answered
    aborted: trio.Event = field(default_factory=trio.Event)  # an A-ABORT arrived
    released: trio.Event = field(default_factory=trio.Event)
    closed: trio.Event = field(default_factory=trio.Event)  # the other side closed the connection


@dataclass
class ScriptedRemote:
    """A DICOM remote on a free loopback port; change ``behaviour``/``answered`` between connections."""

    port: int
    behaviour: Behaviour
    answered: int | None = None  # C-STOREs acknowledged per association before falling silent; None: all
    connections: list[Connection] = field(default_factory=list)
    connected: trio.Event = field(default_factory=trio.Event)  # set at each new connection (replaced then)

    @property
    def stored(self) -> list[str]:
        return [uid for connection in self.connections for uid in connection.stored]

    async def _serve(self, stream: trio.SocketStream) -> None:
        connection = Connection()
        self.connections.append(connection)
        self.connected.set()
        self.connected = trio.Event()
        behaviour, answered = self.behaviour, self.answered
        async with stream:
            try:
                if behaviour is Behaviour.SILENT:
                    connection.stalled.set()
                elif behaviour is Behaviour.REJECT_FOR_NOW:
                    await read_pdu(stream)
                    await stream.send_all(
                        acse.encode_reject((REJECTED_TRANSIENT, SOURCE_PROVIDER_PRESENTATION, LOCAL_LIMIT))
                    )
                else:
                    await _accept(stream)
                await _answer(stream, connection, answered if behaviour is Behaviour.STORE else 0)
            except trio.BrokenResourceError:
                pass  # reset by the other side: the connection is over all the same
            connection.closed.set()


async def _accept(stream: trio.SocketStream) -> None:
    """Read the A-ASSOCIATE-RQ and accept every context a storage SCP would, in the proposed syntax."""
    answer = await read_pdu(stream)
    assert answer is not None and answer[0] == 1
    request = acse.decode_request(answer[1])
    policy = ContextPolicy(ACCEPTED_SYNTAXES, accept_unknown=True)
    results, roles, _ = policy.negotiate(request)
    await stream.send_all(acse.encode_accept(request, results, roles, MAX_PDU))


async def _answer(stream: trio.SocketStream, connection: Connection, answered: int | None) -> None:
    """Acknowledge C-STOREs (``answered`` of them, None: all), then read and drop until the end."""
    command: bytes = b""
    request = None
    while (received := await read_pdu(stream)) is not None:
        pdu_type, body = received
        if pdu_type == ABORT:
            connection.aborted.set()
        elif pdu_type == RELEASE_RQ:
            connection.released.set()
            await stream.send_all(pdu(RELEASE_RP, bytes(4)))
        elif pdu_type == P_DATA:
            for context_id, control, fragment in parse_pdvs(body):
                if control & COMMAND_BIT:
                    command += bytes(fragment)
                    if control & LAST_BIT:
                        request, command = decode_command(command), b""
                elif control & LAST_BIT and request is not None:
                    if answered is not None and len(connection.stored) >= answered:
                        connection.stalled.set()
                    else:
                        connection.stored.append(str(request["AffectedSOPInstanceUID"]))
                        reply = encode_command(response(request, SUCCESS))
                        await stream.send_all(p_data(context_id, LAST_COMMAND_FRAGMENT, reply))
                    request = None
        elif pdu_type == ASSOCIATE_RJ:
            break


async def start_remote(nursery: trio.Nursery, behaviour: Behaviour, *, answered: int | None = None) -> ScriptedRemote:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    remote = ScriptedRemote(int(listeners[0].socket.getsockname()[1]), behaviour, answered)
    nursery.start_soon(trio.serve_listeners, remote._serve, listeners)
    return remote
