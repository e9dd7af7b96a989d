"""Members of one cluster in the test's process: nodes sharing one storage area and index, each
with its own MemberId and free ports, waits on the rows of the shared jobs table, and the jobs
and bounds the cluster tests share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from node.context import NodeContext
from node.storage.index.base import JobRow

from . import job_types
from .jobs import JOB_TIMEOUT, until
from .node import node_config, start_node

ROW_POLL = 0.001  # the rows change on their own (another member's worker): read them again this often
# A pinned job (TestArchive is never saved) whose step 0 blocks until it is paused or cancelled.
BLOCKED = {"Type": "TestArchive", "Asynchronous": True, "Steps": 2, "BlockAt": 0, "Label": "blocked"}
# How long a pause or a cancel may take to answer and to show in the row. The target (the owner acts
# within 100 ms) is a benchmark figure; under a loaded CI machine a test only proves it is prompt,
# far below the lease renewal that would otherwise deliver the command.
ACTION_BOUND = 5.0


async def start_member(nursery: trio.Nursery, tmp_path: Path, member: str, **options: Any) -> NodeContext:
    """A member serving the test-only job route; the same ``tmp_path`` gives the same storage and index."""
    config = node_config(tmp_path, MemberId=member, **options)
    return await start_node(nursery, config, routes=[job_types.blueprint])


async def row_when(node: NodeContext, job_id: str, predicate: Callable[[JobRow], bool]) -> JobRow:
    """The job's row once ``predicate`` holds for it (bounded by JOB_TIMEOUT)."""
    with trio.fail_after(JOB_TIMEOUT):
        while True:
            row = await node.index.job_row(job_id)
            if row is not None and predicate(row):
                return row
            await trio.sleep(ROW_POLL)


async def journal_has(entry: str) -> None:
    """Until a test job wrote ``entry`` in the journal (its stop hook runs in the background)."""
    await until(lambda: entry in job_types.JOURNAL)


def in_state(*states: str) -> Callable[[JobRow], bool]:
    return lambda row: row.state in states


def held_by(node: NodeContext) -> Callable[[JobRow], bool]:
    """The row is Running on that member."""
    member = node.jobs.member
    return lambda row: row.state == "Running" and row.owner == member
