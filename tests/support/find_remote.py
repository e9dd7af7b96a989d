"""A remote that answers every C-FIND with one answer no decoder can read, then success: what a
broken PACS may send, written byte by byte on Trio."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import trio
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from node.net.ul import acse
from node.net.ul.dimse import PENDING, SUCCESS, decode_command, encode_command, response
from node.net.ul.negotiate import ContextPolicy
from node.net.ul.pdu import parse_pdvs

from .ul_peer import LAST_COMMAND_FRAGMENT, P_DATA, RELEASE_RP, RELEASE_RQ, p_data, pdu, read_pdu

ASSOCIATE_RQ = 1
MAX_PDU = 16384
LAST_DATASET_FRAGMENT = 0x02
COMMAND_BIT = 0x01
# A sequence of undefined length whose first "item" is a plain element: unreadable in any syntax.
UNREADABLE_ANSWER = b"\x08\x00\x15\x11\xff\xff\xff\xff" + b"\x10\x00\x10\x00\x04\x00\x00\x00ABCD"


@dataclass
class BrokenFindRemote:
    port: int
    finds: list[int] = field(default_factory=list)  # message IDs of the C-FINDs it answered


async def _serve(remote: BrokenFindRemote, stream: trio.SocketStream) -> None:
    async with stream:
        request = await read_pdu(stream)
        if request is None or request[0] != ASSOCIATE_RQ:
            return
        associate = acse.decode_request(request[1])
        policy = ContextPolicy((str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)), accept_unknown=False)
        results, roles, _ = policy.negotiate(associate)
        await stream.send_all(acse.encode_accept(associate, results, roles, MAX_PDU))
        command = b""
        while (received := await read_pdu(stream)) is not None:
            pdu_type, body = received
            if pdu_type == RELEASE_RQ:
                await stream.send_all(pdu(RELEASE_RP, bytes(4)))
                return
            if pdu_type != P_DATA:
                return
            for context_id, control, fragment in parse_pdvs(body):
                if control & COMMAND_BIT:
                    command += bytes(fragment)
                elif control & LAST_DATASET_FRAGMENT:
                    find = decode_command(command)
                    command = b""
                    remote.finds.append(int(find["MessageID"]))
                    pending = encode_command(response(find, PENDING, with_dataset=True))
                    await stream.send_all(p_data(context_id, LAST_COMMAND_FRAGMENT, pending))
                    await stream.send_all(p_data(context_id, LAST_DATASET_FRAGMENT, UNREADABLE_ANSWER))
                    await stream.send_all(
                        p_data(context_id, LAST_COMMAND_FRAGMENT, encode_command(response(find, SUCCESS)))
                    )


async def start_broken_find_remote(nursery: trio.Nursery) -> BrokenFindRemote:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    remote = BrokenFindRemote(int(listeners[0].socket.getsockname()[1]))

    async def serve(stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # the node aborted: the test looks at its answer
            await _serve(remote, stream)

    nursery.start_soon(trio.serve_listeners, serve, listeners)
    return remote
