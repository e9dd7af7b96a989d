"""The acceptor's state machine against a raw peer: ARTIM, timeouts, limits, malformed PDUs.

Each hostile case ends that one connection (an A-ABORT, an A-ASSOCIATE-RJ or a close, as the
standard says) and leaves the node serving the next association.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from node.context import NodeContext
from node.net.ul.association import ARTIM_TIMEOUT
from tests.support.node import node_config, start_node
from tests.support.ul_peer import (
    ABORT,
    ASSOCIATE_AC,
    ASSOCIATE_RJ,
    P_DATA,
    RELEASE_RP,
    RELEASE_RQ_PDU,
    associate_raw,
    bare_dataset,
    closed_by_peer,
    echo_pdu,
    echo_works,
    p_data,
    pdu,
    read_pdu,
    request_pdu,
    send_in_pieces,
    store_pdus,
)

# A-ABORT (source, reason) and A-ASSOCIATE-RJ (result, source, reason) as read from the wire.
PROVIDER_UNRECOGNIZED_PDU = (2, 1)
PROVIDER_UNEXPECTED_PDU = (2, 2)
PROVIDER_UNEXPECTED_PARAMETER = (2, 5)
PROVIDER_INVALID_PARAMETER = (2, 6)
PIECE_WITHIN_A_PDU = 50_000  # bytes a slow peer writes at once: never a whole number of 16 KB PDUs


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Every node of this module: a short DicomScpTimeout, for the tests of stalled peers."""
    return {"DicomScpTimeout": 10}


def abort_reason(answer: tuple[int, bytes] | None) -> tuple[int, int]:
    assert answer is not None and answer[0] == ABORT, answer
    return answer[1][2], answer[1][3]


def reject_reason(answer: tuple[int, bytes] | None) -> tuple[int, int, int]:
    assert answer is not None and answer[0] == ASSOCIATE_RJ, answer
    return answer[1][1], answer[1][2], answer[1][3]


async def exchange(port: int, *pdus: bytes, associate: bool = True) -> tuple[int, bytes] | None:
    """Send ``pdus`` (after an accepted association request), then read the node's answer."""
    stream = await associate_raw(port) if associate else await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(b"".join(pdus))
        return await read_pdu(stream)
    finally:
        await stream.aclose()


def store_status(answer: tuple[int, bytes] | None) -> int:
    assert answer is not None and answer[0] == P_DATA, answer
    command = answer[1][6:]
    at = command.index(b"\x00\x00\x00\x09")  # (0000,0900) Status
    return int.from_bytes(command[at + 8 : at + 10], "little")


# -- establishment ------------------------------------------------------------------------------


async def test_silent_connection_closed_after_artim(node: NodeContext, autojump_clock: Any) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", node.ports["dicom"])
    opened = trio.current_time()
    assert await read_pdu(stream) is None  # closed with nothing sent
    assert trio.current_time() - opened == pytest.approx(ARTIM_TIMEOUT, abs=1)


async def test_trickled_request_closed_after_artim(node: NodeContext, autojump_clock: Any) -> None:
    """One byte every 5 s keeps the connection busy but the request must be whole within ARTIM."""
    stream = await trio.open_tcp_stream("127.0.0.1", node.ports["dicom"])
    opened = trio.current_time()
    request = request_pdu()

    async def trickle() -> None:
        for byte in request[:-1]:
            try:
                await stream.send_all(bytes([byte]))
            except trio.BrokenResourceError:
                return
            await trio.sleep(5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trickle)
        assert await read_pdu(stream) is None
        closed = trio.current_time()
        nursery.cancel_scope.cancel()
    assert closed - opened == pytest.approx(ARTIM_TIMEOUT, abs=5)
    assert await echo_works(node.ports["dicom"])


async def test_p_data_before_association_is_aborted(node: NodeContext) -> None:
    answer = await exchange(node.ports["dicom"], echo_pdu(), associate=False)
    assert abort_reason(answer) == PROVIDER_UNEXPECTED_PDU


async def test_request_checks(node: NodeContext) -> None:
    port = node.ports["dicom"]
    version_2 = bytearray(request_pdu())
    version_2[7] = 2  # protocol version: bit 0 clear
    assert reject_reason(await exchange(port, bytes(version_2), associate=False)) == (1, 2, 2)
    other_context = request_pdu().replace(b"1.2.840.10008.3.1.1.1", b"1.2.840.10008.3.1.1.9")
    assert reject_reason(await exchange(port, other_context, associate=False)) == (1, 1, 2)
    spaces = bytearray(request_pdu())
    spaces[26:42] = b" " * 16  # calling AE title
    assert reject_reason(await exchange(port, bytes(spaces), associate=False)) == (1, 1, 3)
    tiny_pdus = request_pdu(max_pdu=7)  # every message would be cut in fragments of one byte
    assert reject_reason(await exchange(port, tiny_pdus, associate=False)) == (1, 1, 1)
    latin = bytearray(request_pdu())
    latin[10:12] = "é".encode("latin-1") + b"X"  # called AE title
    assert reject_reason(await exchange(port, bytes(latin), associate=False)) == (1, 1, 7)


async def test_unknown_items_are_skipped(node: NodeContext) -> None:
    request = request_pdu()
    body = request[6:]
    user_at = body.rindex(b"\x50\x00")
    length = int.from_bytes(body[user_at + 2 : user_at + 4], "big")
    unknown_sub_item = b"\x5a\x00\x00\x02ab"
    user = b"\x50\x00" + (length + 6).to_bytes(2, "big") + body[user_at + 4 :] + unknown_sub_item
    body = body[:user_at] + b"\x77\x00\x00\x01?" + user  # an unknown item, then user information
    answer = await exchange(node.ports["dicom"], pdu(1, body), associate=False)
    assert answer is not None and answer[0] == ASSOCIATE_AC


async def test_second_request_is_unexpected(node: NodeContext) -> None:
    assert abort_reason(await exchange(node.ports["dicom"], request_pdu())) == PROVIDER_UNEXPECTED_PDU


async def test_release(node: NodeContext) -> None:
    stream = await associate_raw(node.ports["dicom"])
    await stream.send_all(RELEASE_RQ_PDU)
    assert await read_pdu(stream) == (RELEASE_RP, bytes(4))
    await stream.aclose()  # the requestor closes (the acceptor waits for it)


# -- malformed or hostile PDUs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (pdu(0x09, bytes(4)), PROVIDER_UNRECOGNIZED_PDU),
        (b"\x04\x00\xff\xff\xff\xff", PROVIDER_INVALID_PARAMETER),  # a 4 GB P-DATA-TF: refused on its header
        (b"\x05\x00\x00\x00\x00\x08" + bytes(8), PROVIDER_INVALID_PARAMETER),  # A-RELEASE-RQ of 8 bytes
        (pdu(P_DATA, b""), PROVIDER_INVALID_PARAMETER),  # no PDV
        (pdu(P_DATA, struct.pack(">IBB", 100, 1, 3) + b"abc"), PROVIDER_INVALID_PARAMETER),  # PDV overruns
        (p_data(1, 0x02, b"dataset first"), PROVIDER_UNEXPECTED_PARAMETER),
        (p_data(5, 0x03, b"context never proposed"), PROVIDER_INVALID_PARAMETER),
        (p_data(1, 0x03, b"\x00\x00\x00\x01\xff\xff\x00\x00"), PROVIDER_INVALID_PARAMETER),  # element overruns
        (p_data(1, 0x01, b"\x00" * 4) + p_data(3, 0x03, b"\x00" * 4), PROVIDER_UNEXPECTED_PARAMETER),
        (pdu(ASSOCIATE_AC, bytes(68)), PROVIDER_UNEXPECTED_PDU),
    ],
    ids=[
        "unknown-type",
        "huge-length",
        "bad-fixed-length",
        "empty-p-data",
        "pdv-overrun",
        "dataset-first",
        "unknown-context",
        "bad-command",
        "context-switch",
        "ac-to-acceptor",
    ],
)
async def test_malformed_pdu_aborts_that_association_only(
    node: NodeContext, sent: bytes, reason: tuple[int, int]
) -> None:
    assert abort_reason(await exchange(node.ports["dicom"], sent)) == reason
    assert await echo_works(node.ports["dicom"])


async def test_huge_request_length_refused_before_its_bytes(node: NodeContext) -> None:
    """An A-ASSOCIATE-RQ announcing 2 GB is aborted on its 6-byte header."""
    answer = await exchange(node.ports["dicom"], b"\x01\x00\x7f\xff\xff\xff", associate=False)
    assert abort_reason(answer) == PROVIDER_INVALID_PARAMETER


async def test_pdu_cut_by_a_close(node: NodeContext) -> None:
    stream = await associate_raw(node.ports["dicom"])
    await stream.send_all(echo_pdu()[:10])
    await stream.aclose()
    assert await echo_works(node.ports["dicom"])


async def test_peer_stalling_mid_pdu_is_aborted(node: NodeContext, autojump_clock: Any) -> None:
    stream = await associate_raw(node.ports["dicom"])
    await stream.send_all(echo_pdu()[:10])
    stalled = trio.current_time()
    assert abort_reason(await read_pdu(stream)) == (0, 0)
    assert trio.current_time() - stalled == pytest.approx(10, abs=1)
    await stream.aclose()


async def test_idle_association_is_aborted(node: NodeContext, autojump_clock: Any) -> None:
    stream = await associate_raw(node.ports["dicom"])
    await stream.send_all(echo_pdu())
    assert (await read_pdu(stream) or (0,))[0] == P_DATA
    idle = trio.current_time()
    assert abort_reason(await read_pdu(stream)) == (0, 0)
    assert trio.current_time() - idle == pytest.approx(10, abs=1)
    assert await closed_by_peer(stream)


# -- limits --------------------------------------------------------------------------------------


async def test_association_limits(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, DicomMaximumAssociations=2, DicomMaximumAssociationsPerHost=0)
    port = (await start_node(nursery, config)).ports["dicom"]
    first, second = await associate_raw(port), await associate_raw(port)
    assert reject_reason(await exchange(port, request_pdu(), associate=False)) == (2, 3, 2)
    await first.send_all(RELEASE_RQ_PDU)
    assert await read_pdu(first) == (RELEASE_RP, bytes(4))
    await first.aclose()
    await trio.testing.wait_all_tasks_blocked()  # the node has seen the close: the slot is free again
    answer = await exchange(port, request_pdu(), associate=False)
    assert answer is not None and answer[0] == ASSOCIATE_AC
    await second.aclose()


async def test_per_host_limit(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, DicomMaximumAssociations=10, DicomMaximumAssociationsPerHost=1)
    port = (await start_node(nursery, config)).ports["dicom"]
    held = await associate_raw(port)
    assert reject_reason(await exchange(port, request_pdu(), associate=False)) == (2, 3, 2)
    await held.aclose()


async def test_slots_are_taken_only_by_checked_and_complete_requests(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Peers that trickle a request, or that we refuse, never hold a slot."""
    config = node_config(tmp_path, DicomMaximumAssociations=1, DicomCheckCalledAet=True)
    port = (await start_node(nursery, config)).ports["dicom"]
    tricklers = []
    for _ in range(5):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(request_pdu()[:20])
        tricklers.append(stream)
    refused = await exchange(port, request_pdu(called="SOMEONE"), associate=False)
    assert reject_reason(refused) == (1, 1, 7)
    assert await echo_works(port)
    for stream in tricklers:
        await stream.aclose()


async def test_dataset_over_the_size_limit_is_refused(nursery: trio.Nursery, tmp_path: Path) -> None:
    config = node_config(tmp_path, DicomMaximumDatasetSize=1)
    context = await start_node(nursery, config)
    big, big_uid = bare_dataset(patient_id="BIG", pixels=b"\x01\x02" * 750_000)
    small, small_uid = bare_dataset(patient_id="SMALL")
    stream = await associate_raw(context.ports["dicom"])
    await stream.send_all(store_pdus(big, big_uid))
    assert store_status(await read_pdu(stream)) == 0xA700
    await stream.send_all(store_pdus(small, small_uid, message_id=2))  # the association goes on
    assert store_status(await read_pdu(stream)) == 0x0000
    await stream.aclose()
    assert (await context.index.statistics())["CountInstances"] == 1


async def test_large_dataset_spooled_and_stored_whole(node: NodeContext, http: httpx.AsyncClient) -> None:
    """Beyond the spool threshold the dataset goes through a temporary file; nothing is left of it."""
    data, uid = bare_dataset(patient_id="SPOOL", pixels=bytes(range(250)) * 12_000)
    stream = await associate_raw(node.ports["dicom"])
    await stream.send_all(store_pdus(data, uid))
    assert store_status(await read_pdu(stream)) == 0x0000
    await stream.aclose()
    (instance,) = (await http.get("/instances")).json()
    stored = (await http.get(f"/instances/{instance}/file")).content
    assert stored.endswith(data)
    temporary = node.settings.storage.temporary_directory
    assert temporary is not None and (not temporary.exists() or not list(temporary.iterdir()))


async def test_large_dataset_from_a_peer_slower_than_the_node(node: NodeContext, http: httpx.AsyncClient) -> None:
    """Each write of the peer ends within a PDU and is read before the next one comes: the node
    waits for the rest of a PDU again and again, past a megabyte read, and stores the dataset whole."""
    data, uid = bare_dataset(patient_id="SLOW", pixels=bytes(range(250)) * 10_000)
    stream = await associate_raw(node.ports["dicom"])
    await send_in_pieces(stream, store_pdus(data, uid), PIECE_WITHIN_A_PDU)
    assert store_status(await read_pdu(stream)) == 0x0000
    await stream.aclose()
    (instance,) = (await http.get("/instances")).json()
    assert (await http.get(f"/instances/{instance}/file")).content.endswith(data)


async def test_no_error_logged_for_hostile_peers(node: NodeContext, caplog: pytest.LogCaptureFixture) -> None:
    """What a peer sends is never a bug of ours: no traceback in the log."""
    with caplog.at_level(logging.WARNING, logger="node"):
        for sent in (pdu(0x09, bytes(4)), p_data(1, 0x02, b"x"), b"\x04\x00\xff\xff\xff\xff"):
            await exchange(node.ports["dicom"], sent)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("aborted" in r.getMessage() for r in caplog.records)
