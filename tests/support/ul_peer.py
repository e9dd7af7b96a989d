"""A raw DICOM peer for the Upper Layer tests: PDUs written and read byte by byte, so that a test
can send what no well-behaved library would (partial, malformed, out-of-order PDUs)."""

from __future__ import annotations

import struct

import trio
import trio.testing
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import build_context

from node.net.ul import acse
from node.net.ul.dimse import C_ECHO_RQ, C_STORE_RQ, HAS_DATASET, NO_DATASET, encode_command

from .datasets import CT_IMAGE_STORAGE, dataset_part, make_dataset, to_bytes

VERIFICATION = "1.2.840.10008.1.1"
ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = 2, 3, 4, 5, 6, 7
ABORT_DEADLINE = 0.1  # seconds from the cancellation of an association to its A-ABORT on the wire
LAST_COMMAND_FRAGMENT, DATASET_FRAGMENT, LAST_DATASET_FRAGMENT = 0x03, 0x00, 0x02  # PDV message control headers
_HEADER = struct.Struct(">BxI")


def request_pdu(
    calling: str = "RAWSCU",
    called: str = "ORTHANC",
    sop_classes: tuple[str, ...] = (VERIFICATION, CT_IMAGE_STORAGE),
    max_pdu: int = 16384,
) -> bytes:
    contexts = []
    for number, sop_class in enumerate(sop_classes):
        context = build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
        context.context_id = 2 * number + 1
        contexts.append(context)
    return acse.encode_request(calling, called, contexts, max_pdu)


def pdu(pdu_type: int, body: bytes) -> bytes:
    return _HEADER.pack(pdu_type, len(body)) + body


def p_data(context_id: int, control: int, payload: bytes) -> bytes:
    """One P-DATA-TF with one PDV."""
    return pdu(P_DATA, struct.pack(">IBB", len(payload) + 2, context_id, control) + payload)


def echo_pdu(message_id: int = 1, context_id: int = 1) -> bytes:
    command = encode_command(
        {
            "CommandField": C_ECHO_RQ,
            "MessageID": message_id,
            "AffectedSOPClassUID": VERIFICATION,
            "CommandDataSetType": NO_DATASET,
        }
    )
    return p_data(context_id, LAST_COMMAND_FRAGMENT, command)


def store_pdus(data: bytes, sop_instance: str, message_id: int = 1, fragment: int = 16372) -> bytes:
    """A C-STORE-RQ of ``data`` (a bare dataset) on context 3, in fragments of ``fragment`` bytes."""
    command = encode_command(
        {
            "CommandField": C_STORE_RQ,
            "MessageID": message_id,
            "AffectedSOPClassUID": CT_IMAGE_STORAGE,
            "AffectedSOPInstanceUID": sop_instance,
            "Priority": 0,
            "CommandDataSetType": HAS_DATASET,
        }
    )
    parts = [p_data(3, LAST_COMMAND_FRAGMENT, command)]
    for start in range(0, len(data), fragment):
        last = start + fragment >= len(data)
        parts.append(p_data(3, LAST_DATASET_FRAGMENT if last else DATASET_FRAGMENT, data[start : start + fragment]))
    return b"".join(parts)


def bare_dataset(patient_id: str, pixels: bytes = b"") -> tuple[bytes, str]:
    """(a CT dataset without file meta in Explicit VR LE, its SOPInstanceUID); ``pixels`` as rows of 1000 bytes."""
    ds = make_dataset(patient_id=patient_id, pixels=pixels[:1000] or None)
    if pixels:
        ds.Rows = len(pixels) // 1000
        ds.Columns = 500
        ds.PixelData = pixels
    return dataset_part(to_bytes(ds)), str(ds.SOPInstanceUID)


RELEASE_RQ_PDU = pdu(RELEASE_RQ, bytes(4))
RELEASE_RP_PDU = pdu(RELEASE_RP, bytes(4))


async def read_exactly(stream: trio.SocketStream, size: int) -> bytes | None:
    """``size`` bytes, or None if the peer closes first."""
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


async def read_pdu(stream: trio.SocketStream) -> tuple[int, bytes] | None:
    """The next PDU (type, body), or None when the peer closed (or reset) the connection."""
    try:
        header = await read_exactly(stream, _HEADER.size)
        if header is None:
            return None
        pdu_type, length = _HEADER.unpack(header)
        body = await read_exactly(stream, length)
    except trio.BrokenResourceError:
        return None
    return None if body is None else (pdu_type, body)


async def closed_by_peer(stream: trio.SocketStream) -> bool:
    """Everything left is read and dropped until the peer closes: True, or False on a reset."""
    try:
        while await stream.receive_some(1 << 16):
            pass
    except trio.BrokenResourceError:
        return False
    return True


async def associate_raw(port: int, **request: object) -> trio.SocketStream:
    """A connection whose association was accepted (context 1: verification, 3: CT storage)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request_pdu(**request))  # type: ignore[arg-type]
    answer = await read_pdu(stream)
    assert answer is not None and answer[0] == ASSOCIATE_AC, answer
    return stream


async def echo_works(port: int) -> bool:
    """A whole association: request, C-ECHO, release; True if every step answered as expected."""
    stream = await associate_raw(port)
    try:
        await stream.send_all(echo_pdu())
        answer = await read_pdu(stream)
        if answer is None or answer[0] != P_DATA:
            return False
        await stream.send_all(RELEASE_RQ_PDU)
        return await read_pdu(stream) == (RELEASE_RP, bytes(4))
    finally:
        await stream.aclose()


async def send_in_pieces(stream: trio.SocketStream, data: bytes, piece: int) -> None:
    """``data`` in writes of ``piece`` bytes, each once every task of this run waits (the node in
    the same run has read the write before): a peer slower than the node's reads."""
    for start in range(0, len(data), piece):
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(data[start : start + piece])
