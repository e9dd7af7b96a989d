"""Cancellation reaches every association at once: stopping the node puts an A-ABORT on the wire
within 100 ms and leaves no task and no thread behind."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from tests.support.node import new_threads, node_config, start_stoppable_node
from tests.support.ul_peer import ABORT, ABORT_DEADLINE, P_DATA, associate_raw, echo_pdu, read_pdu


async def test_stop_aborts_associations_at_once_without_threads(tmp_path: Path) -> None:
    before_node = set(threading.enumerate())
    async with trio.open_nursery() as nursery:
        node = await start_stoppable_node(nursery, node_config(tmp_path))
        context = node.context
        before_associations = set(threading.enumerate())
        streams = [await associate_raw(context.ports["dicom"]) for _ in range(3)]
        await streams[0].send_all(echo_pdu())
        assert (await read_pdu(streams[0]) or (0,))[0] == P_DATA
        assert new_threads(before_associations) == [], "associations run on the Trio thread"

        node.stop()
        cancelled_at = trio.current_time()
        for stream in streams:
            answer = await read_pdu(stream)
            assert answer is not None and answer[0] == ABORT
            assert answer[1][2] == 0  # source: service user
            assert trio.current_time() - cancelled_at < ABORT_DEADLINE
            await stream.aclose()
        with trio.fail_after(5):
            await node.stopped.wait()
    assert new_threads(before_node) == []
