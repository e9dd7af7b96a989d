"""The acceptor remembers its answer to an association request it saw before (a modality sends
the same one every time): the remembered answer is the one it would compute, and it follows the
options changed through REST in the meantime."""

from __future__ import annotations

import socket
import struct

import httpx
import trio
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AllStoragePresentationContexts
from pynetdicom.presentation import build_context

from node.context import NodeContext
from node.net.ul import acse
from node.net.ul.pdu import A_ASSOCIATE_AC, RELEASE_RQ_PDU

CONTEXTS = 100  # about what storescu proposes
ITEM = struct.Struct(">BxH")
RESULT_ITEM, ACCEPTED = 0x21, 0


def storescu_like_request() -> bytes:
    contexts = []
    for number, proposed in enumerate(AllStoragePresentationContexts[:CONTEXTS]):
        context = build_context(proposed.abstract_syntax, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        context.context_id = 2 * number + 1
        contexts.append(context)
    return acse.encode_request("MODALITY", "ORTHANC", contexts, 16384)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed by the node"
        data += chunk
    return data


def associate(port: int, request: bytes) -> bytes:
    """The node's answer to ``request`` (the association is released after)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        pdu_type, length = struct.unpack(">BxI", _receive(sock, 6))
        answer = bytes([pdu_type]) + _receive(sock, length)
        sock.sendall(RELEASE_RQ_PDU)
        _receive(sock, 10)
    return answer


def accepted_syntaxes(answer: bytes) -> set[str]:
    """The transfer syntaxes of the accepted contexts of an A-ASSOCIATE-AC (type byte, then the body)."""
    assert answer[0] == A_ASSOCIATE_AC
    syntaxes, position = set(), 1 + 68
    while position < len(answer):
        item_type, length = ITEM.unpack_from(answer, position)
        value = answer[position + 4 : position + 4 + length]
        if item_type == RESULT_ITEM and value[2] == ACCEPTED:
            syntaxes.add(value[8:].decode().rstrip("\0"))
        position += 4 + length
    return syntaxes


async def test_a_repeated_request_gets_the_same_answer_as_options_allow(
    node: NodeContext, http: httpx.AsyncClient
) -> None:
    port, request = node.ports["dicom"], storescu_like_request()
    first = await trio.to_thread.run_sync(associate, port, request)
    assert accepted_syntaxes(first) == {ExplicitVRLittleEndian}  # Orthanc's first choice
    assert await trio.to_thread.run_sync(associate, port, request) == first
    assert (await http.put("/tools/accepted-transfer-syntaxes", content=ImplicitVRLittleEndian)).status_code == 200
    changed = await trio.to_thread.run_sync(associate, port, request)
    assert accepted_syntaxes(changed) == {ImplicitVRLittleEndian}
