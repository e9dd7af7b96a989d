"""Studies made for job tests, and gates that stop a job at a chosen instance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import trio
from pydicom.uid import generate_uid

from node.context import NodeContext
from node.jobs.record import JobRecord, JobState
from node.services.ingest import IngestResult
from tests.helpers import make_dicom


@dataclass
class Study:
    patient: str
    study: str
    series: dict[str, list[str]]  # series ID -> its instances, in upload order

    @property
    def instances(self) -> list[str]:
        return [i for instances in self.series.values() for i in instances]


async def upload_study(
    http: httpx.AsyncClient, *, patient: str = "PAT", series: int = 2, per_series: int = 2, **tags: Any
) -> Study:
    study_uid = generate_uid()
    answers = []
    for _ in range(series):
        series_uid = generate_uid()
        for number in range(1, per_series + 1):
            data = make_dicom(
                patient_id=patient, study_uid=study_uid, series_uid=series_uid, instance_number=number, **tags
            )
            answers.append((await http.post("/instances", content=data)).json())
    by_series: dict[str, list[str]] = {}
    for answer in answers:
        by_series.setdefault(answer["ParentSeries"], []).append(answer["ID"])
    return Study(answers[0]["ParentPatient"], answers[0]["ParentStudy"], by_series)


async def get(http: httpx.AsyncClient, path: str) -> Any:
    answer = await http.get(path)
    assert answer.status_code == 200, f"{path}: {answer.status_code}"
    return answer.json()


async def record_of(node: NodeContext, job_id: str) -> JobRecord:
    assert node.jobs is not None
    record = node.jobs.get(job_id)
    assert record is not None
    return record


async def finished(node: NodeContext, job_id: str) -> None:
    with trio.fail_after(30):
        await (await record_of(node, job_id)).completed.wait()


class IngestHold:
    """Holds a job inside the step that stores its ``after``-th instance until released.

    Plugged into the ingest listeners: the step is in its shielded part there, so a
    pause asked meanwhile takes effect exactly when that step ends.
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
    record = await record_of(node, job_id)
    with trio.fail_after(30):
        await gate.reached.wait()
    assert (await http.post(f"/jobs/{job_id}/pause", content="")).status_code == 200
    gate.release.set()
    with trio.fail_after(30):
        await record.left_running.wait()
    assert record.state is JobState.PAUSED
