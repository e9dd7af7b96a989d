"""The shared base of jobs that process a list of instances (store, modify, split, merge).

One step per instance, plus an optional trailing step (deleting sources, say). An
instance that cannot be processed is counted in ``FailedInstancesCount``; in
permissive mode a step that raises is counted the same way instead of failing
the job.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import trio
import trio.testing

from ..errors import OrthancError
from ..services.bundle import ServiceBundle
from .job import Job, Step, StepOutcome

# At most this long (seconds) after its submission, a job lets the answer to that submission go first.
ANSWER_FIRST_LIMIT = 0.005


async def let_answer_go(submitted: float) -> None:
    """Wait until the event loop has nothing else to run, or ANSWER_FIRST_LIMIT after ``submitted``
    (trio time), whichever comes first.

    A request that submits a job and answers at once must not have its answer held back by the
    job's first step: the worker wakes as the job is queued, and a step that works on the event
    loop (a small file rewritten there) would run before the answer is written to its socket.
    Once no other task can run, the answer is out (or waits for its client). The bound keeps a
    busy node from postponing the job; a job that waited in the queue longer starts at once.
    """
    deadline = submitted + ANSWER_FIRST_LIMIT
    if trio.current_time() < deadline:
        with trio.move_on_at(deadline):
            await trio.testing.wait_all_tasks_blocked()


class InstanceSetJob(Job):
    #: ResourceModification, SplitStudy and MergeStudy end with a step that deletes the sources.
    has_trailing_step: ClassVar[bool] = False

    def __init__(self, instances: list[str], description: str = "REST API") -> None:
        self.instances = list(instances)
        self.description = description
        self.position = 0
        self.failed: list[str] = []
        # When a route that answers before the job ends submitted it (trio time): its first step
        # lets the answer go first (see let_answer_go). Not saved: a reloaded job has no request
        # waiting for an answer.
        self.answer_first: float | None = None

    @abc.abstractmethod
    async def process_instance(self, services: ServiceBundle, instance: str) -> bool:
        """Handle one instance; False counts it as failed without failing the job."""

    async def trailing_step(self, services: ServiceBundle) -> None:
        """The last step, run once every instance is processed (if ``has_trailing_step``)."""

    @property
    def total_steps(self) -> int:
        return len(self.instances) + (1 if self.has_trailing_step else 0)

    def _advance(self, failed_instance: str | None) -> Step:
        if failed_instance is not None:
            self.failed.append(failed_instance)
        self.position += 1
        return Step.DONE if self.position >= self.total_steps else Step.CONTINUE

    def _current_instance(self) -> str | None:
        return self.instances[self.position] if self.position < len(self.instances) else None

    async def step(self, services: ServiceBundle) -> StepOutcome:
        if self.position >= self.total_steps:
            return Step.DONE
        if self.answer_first is not None:
            await let_answer_go(self.answer_first)
            self.answer_first = None  # a step interrupted from here on leaves no trace either way
        instance = self._current_instance()
        if instance is None:
            await self.trailing_step(services)
            return self._advance(None)
        ok = await self.process_instance(services, instance)
        return self._advance(None if ok else instance)

    def skip_failed_step(self, error: OrthancError) -> StepOutcome:
        return self._advance(self._current_instance())

    def progress(self) -> float:
        total = self.total_steps
        return 1.0 if total == 0 else min(1.0, self.position / total)

    def content(self) -> dict[str, Any]:
        return {
            "Description": self.description,
            "FailedInstancesCount": len(self.failed),
            "InstancesCount": len(self.instances),
        }

    def reset(self) -> None:
        self.position = 0
        self.failed = []

    def serialize(self) -> dict[str, Any] | None:
        return {
            "Description": self.description,
            "Instances": self.instances,
            "Position": self.position,
            "Failed": self.failed,
        }

    def restore_instance_set(self, data: dict[str, Any]) -> None:
        """For subclasses' :meth:`deserialize`: the part :meth:`serialize` wrote here."""
        self.instances = list(data["Instances"])
        self.description = str(data["Description"])
        self.position = int(data["Position"])
        self.failed = list(data["Failed"])
