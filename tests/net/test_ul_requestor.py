"""The requestor role: against our own SCP, DCMTK's storescp and a scripted acceptor (release
collision, rejection, cancellation)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.presentation import PresentationContext, build_context

from node.context import NodeContext
from node.net.ul import acse
from node.net.ul.negotiate import ContextPolicy
from node.net.ul.requestor import AssociationFailed, associate
from tests.support.datasets import CT_IMAGE_STORAGE, make_dicom
from tests.support.dcmtk import dcmtk_tool, without_nagle
from tests.support.ul_peer import (
    ABORT,
    ABORT_DEADLINE,
    P_DATA,
    RELEASE_RP_PDU,
    RELEASE_RQ,
    RELEASE_RQ_PDU,
    VERIFICATION,
    read_pdu,
)

STORESCP = dcmtk_tool("storescp")


def proposals(*sop_classes: str) -> list[PresentationContext]:
    return [build_context(uid, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for uid in sop_classes]


async def test_echo_and_store_into_our_scp(node: NodeContext) -> None:
    files = [make_dicom(patient_id="SCU", instance_number=n) for n in range(5)]
    async with associate(
        "127.0.0.1",
        node.ports["dicom"],
        calling_aet="OURSCU",
        called_aet="ORTHANC",
        contexts=proposals(VERIFICATION, CT_IMAGE_STORAGE),
    ) as peer:
        assert await peer.c_echo() == 0x0000
        assert [await peer.c_store(data) for data in files] == [0x0000] * 5
    assert (await node.index.statistics())["CountInstances"] == 5


async def test_store_into_dcmtk_storescp(tmp_path: Path) -> None:
    if STORESCP is None:
        pytest.skip("DCMTK storescp not found outside the venv")
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    output = tmp_path / "received"
    output.mkdir()
    files = [make_dicom(patient_id="TODCMTK", instance_number=n) for n in range(3)]
    async with trio.open_nursery() as nursery:
        storescp = await nursery.start(
            lambda task_status: trio.run_process(
                [STORESCP, "-od", str(output), "--aetitle", "STORESCP", str(port)],
                env=without_nagle(),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                task_status=task_status,
            )
        )
        try:
            with trio.fail_after(10):
                while True:  # retried until storescp listens: it says nothing when it does
                    try:
                        async with associate(
                            "127.0.0.1",
                            port,
                            calling_aet="OURSCU",
                            called_aet="STORESCP",
                            contexts=[build_context(CT_IMAGE_STORAGE, [ExplicitVRLittleEndian])],
                        ) as peer:
                            statuses = [await peer.c_store(data) for data in files]
                        break
                    except AssociationFailed:
                        await trio.sleep(0.05)
        finally:
            storescp.terminate()
    assert statuses == [0x0000] * 3
    received = sorted(p.read_bytes() for p in output.iterdir())
    assert len(received) == 3
    # storescp writes its own meta header; the dataset bytes are ours
    assert sorted(data[-200:] for data in files) == sorted(data[-200:] for data in received)


# -- against a scripted acceptor ----------------------------------------------------------------

Script = Callable[[trio.SocketStream], Awaitable[None]]


async def accept_request(stream: trio.SocketStream) -> None:
    """Read an A-ASSOCIATE-RQ and accept what a verification/storage SCP would."""
    answer = await read_pdu(stream)
    assert answer is not None and answer[0] == 1
    request = acse.decode_request(answer[1])
    results, roles, _ = ContextPolicy((ExplicitVRLittleEndian,), accept_unknown=False).negotiate(request)
    await stream.send_all(acse.encode_accept(request, results, roles, 16384))


async def scripted_acceptor(nursery: trio.Nursery, script: Script) -> int:
    """A one-connection acceptor on a free port, running ``script`` on the connection."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def serve() -> None:
        stream = await listeners[0].accept()
        await listeners[0].aclose()
        async with stream:
            await script(stream)

    nursery.start_soon(serve)
    return int(listeners[0].socket.getsockname()[1])


async def test_release_collision(nursery: trio.Nursery) -> None:
    """Both sides ask to release at once: the requestor answers the acceptor's request, then
    still waits for the answer to its own."""
    steps: list[str] = []
    finished = trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_request(stream)
        assert await read_pdu(stream) == (RELEASE_RQ, bytes(4))
        await stream.send_all(RELEASE_RQ_PDU)  # ours crosses theirs
        assert await read_pdu(stream) == (6, bytes(4))  # they answered ours
        steps.append("answered")
        await stream.send_all(RELEASE_RP_PDU)
        assert await read_pdu(stream) is None  # then the requestor closes
        steps.append("closed")
        finished.set()

    port = await scripted_acceptor(nursery, script)
    async with associate(
        "127.0.0.1", port, calling_aet="A", called_aet="B", contexts=proposals(VERIFICATION), timeout=5
    ):
        pass
    with trio.fail_after(5):
        await finished.wait()
    assert steps == ["answered", "closed"]


async def test_rejection_and_refused_connection(nursery: trio.Nursery) -> None:
    async def reject(stream: trio.SocketStream) -> None:
        await read_pdu(stream)
        await stream.send_all(acse.encode_reject(acse.REJECT_CALLED_AET))

    port = await scripted_acceptor(nursery, reject)
    with pytest.raises(AssociationFailed, match="Association Rejected"):
        async with associate("127.0.0.1", port, calling_aet="A", called_aet="B", contexts=proposals(VERIFICATION)):
            pass
    with pytest.raises(AssociationFailed, match="TCP Initialization Error"):
        async with associate("127.0.0.1", port, calling_aet="A", called_aet="B", contexts=proposals(VERIFICATION)):
            pass


async def test_cancelling_the_scope_aborts_within_100_ms(nursery: trio.Nursery) -> None:
    seen: dict[str, float] = {}
    requested, aborted = trio.Event(), trio.Event()

    async def script(stream: trio.SocketStream) -> None:
        await accept_request(stream)
        answer = await read_pdu(stream)  # the C-ECHO-RQ, which we never answer
        assert answer is not None and answer[0] == P_DATA
        requested.set()
        answer = await read_pdu(stream)
        assert answer is not None and answer[0] == ABORT
        seen["abort"] = trio.current_time()
        aborted.set()

    port = await scripted_acceptor(nursery, script)
    with trio.CancelScope() as scope:

        async def cancel_once_requested() -> None:
            await requested.wait()
            seen["cancel"] = trio.current_time()
            scope.cancel()

        nursery.start_soon(cancel_once_requested)
        async with associate(
            "127.0.0.1", port, calling_aet="A", called_aet="B", contexts=proposals(VERIFICATION)
        ) as peer:
            await peer.c_echo()
    with trio.fail_after(5):
        await aborted.wait()
    assert seen["abort"] - seen["cancel"] < ABORT_DEADLINE
