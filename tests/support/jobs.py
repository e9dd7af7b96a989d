"""Jobs seen from a test: their records, waiting for them, and holding one at a chosen instance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import trio

from node.context import NodeContext
from node.jobs.record import JobRecord, JobState, is_not_running
from node.services.ingest import IngestResult

from .node import jobs_of

JOB_TIMEOUT = 30.0  # seconds a test waits for a job to reach a state


async def until(predicate: Callable[[], bool], *, poll: float = 0.001, timeout: float = JOB_TIMEOUT) -> None:
    """Wait for a condition the engine reaches on its own; TooSlowError past ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(poll)


def record_of(node: NodeContext, job_id: str) -> JobRecord:
    record = jobs_of(node).get(job_id)
    assert record is not None, f"no job {job_id}"
    return record


async def finished(node: NodeContext, job_id: str) -> JobRecord:
    """The job's record once it succeeded or failed."""
    record = record_of(node, job_id)
    with trio.fail_after(JOB_TIMEOUT):
        await record.completed.wait()
    return record


class IngestHold:
    """Holds a job inside the step that stores its ``after``-th instance until released.

    An ingest listener: the step is in its shielded part there, so a pause asked
    meanwhile takes effect exactly when that step ends.
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self.count = 0
        self.reached = trio.Event()
        self.release = trio.Event()

    async def __call__(self, result: IngestResult) -> None:
        self.count += 1
        if self.count == self.after:
            self.reached.set()
            await self.release.wait()


@asynccontextmanager
async def gate_at(node: NodeContext, after: int) -> AsyncIterator[IngestHold]:
    gate = IngestHold(after)
    node.ingest.listeners.append(gate)
    try:
        yield gate
    finally:
        gate.release.set()
        node.ingest.listeners.remove(gate)


async def pause_at(node: NodeContext, http: httpx.AsyncClient, job_id: str, gate: IngestHold) -> None:
    """Pause the job through REST while it stores its gated instance; back once it is Paused."""
    record = record_of(node, job_id)
    with trio.fail_after(JOB_TIMEOUT):
        await gate.reached.wait()
    assert (await http.post(f"/jobs/{job_id}/pause", content="")).status_code == 200
    gate.release.set()
    with trio.fail_after(JOB_TIMEOUT):
        await record.status.wait_value(is_not_running)
    assert record.state is JobState.PAUSED
