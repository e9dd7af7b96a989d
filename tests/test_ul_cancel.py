"""Cancellation reaches every association at once: stopping the node puts an A-ABORT on the wire
within 100 ms and leaves no task and no thread behind."""

from __future__ import annotations

import threading
from pathlib import Path

import trio

from node.context import NodeContext
from node.supervisor import serve
from tests.conftest import node_config
from tests.ul_peers import ABORT, P_DATA, associate_raw, echo_pdu, read_pdu

ABORT_DEADLINE = 0.1  # s


def threads_since(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since ``before``, except trio's cache of idle worker threads."""
    return [t for t in threading.enumerate() if t not in before and not t.name.startswith("Trio thread")]


async def test_stop_aborts_associations_at_once_without_threads(tmp_path: Path) -> None:
    before_node = set(threading.enumerate())
    node_scope = trio.CancelScope()
    stopped = trio.Event()

    async def run_node(task_status: trio.TaskStatus[NodeContext]) -> None:
        with node_scope:
            await serve(node_config(tmp_path), task_status=task_status)
        stopped.set()

    async with trio.open_nursery() as nursery:
        context: NodeContext = await nursery.start(run_node)
        before_associations = set(threading.enumerate())
        streams = [await associate_raw(context.ports["dicom"]) for _ in range(3)]
        await streams[0].send_all(echo_pdu())
        assert (await read_pdu(streams[0]) or (0,))[0] == P_DATA
        assert threads_since(before_associations) == [], "associations run on the Trio thread"

        node_scope.cancel()
        cancelled_at = trio.current_time()
        for stream in streams:
            answer = await read_pdu(stream)
            assert answer is not None and answer[0] == ABORT
            assert answer[1][2] == 0  # source: service user
            assert trio.current_time() - cancelled_at < ABORT_DEADLINE
            await stream.aclose()
        with trio.fail_after(5):
            await stopped.wait()
    assert threads_since(before_node) == []
