"""What the registry knows of one job: state, priority, times, error, and its saved form.

The state is an :class:`~trio_util.AsyncValue`: whoever waits for a job (its end, its
leaving Running, its stop hooks) waits on a predicate of the one value the engine sets,
so no event has to be created, set and replaced in step with the state.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import trio
from trio_util import AsyncValue

from ..clock import orthanc_timestamp, utc_now
from ..errors import ErrorCode, description
from .job import Job, job_type


class JobState(enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    PAUSED = "Paused"
    RETRY = "Retry"
    SUCCESS = "Success"
    FAILURE = "Failure"

    @property
    def completed(self) -> bool:
        return self in (JobState.SUCCESS, JobState.FAILURE)


class Request(enum.Enum):
    """A user action waiting for the running job to leave its cancel scope."""

    PAUSE = "pause"
    CANCEL = "cancel"
    LOST = "lost"  # cluster: another member holds the job's lease now; it stops here, writing nothing


NO_USER_DATA: Any = object()


def is_completed(state: JobState) -> bool:
    """Predicate of waiters for the end of a job (one shared function: one wait queue for all)."""
    return state.completed


def is_not_running(state: JobState) -> bool:
    return state is not JobState.RUNNING


class Completion:
    """A job's end seen as an event (``is_set``, ``wait``), read from its state: the two
    cannot disagree, and a resubmitted job is simply not completed any more."""

    __slots__ = ("_status",)

    def __init__(self, status: AsyncValue[JobState]) -> None:
        self._status = status

    def is_set(self) -> bool:
        return is_completed(self._status.value)

    async def wait(self) -> None:
        await self._status.wait_value(is_completed)


@dataclass(frozen=True)
class PublicFacts:
    """What GET /jobs/{id} shows of a job, from its record or from a cluster's row."""

    id: str
    type_name: str
    state: JobState
    priority: int
    content: dict[str, Any]
    fraction: float  # progress, 0..1
    creation_time: datetime
    completion_time: datetime | None
    runtime: float
    error_code: ErrorCode
    error_details: str
    attempts: int
    user_data: Any


def job_answer(facts: PublicFacts, now: datetime) -> dict[str, Any]:
    """The answer of GET /jobs/{id}."""
    answer: dict[str, Any] = {
        "Content": facts.content,
        "CreationTime": orthanc_timestamp(facts.creation_time),
        "EffectiveRuntime": round(facts.runtime, 3),
        "ErrorCode": int(facts.error_code),
        "ErrorDescription": description(facts.error_code),
        "ErrorDetails": facts.error_details,
        "ID": facts.id,
        "Priority": facts.priority,
        "Progress": int(facts.fraction * 100 + 0.5),
        "State": facts.state.value,
        "Timestamp": orthanc_timestamp(now),
        "Type": facts.type_name,
    }
    if facts.completion_time is not None and facts.state.completed:
        answer["CompletionTime"] = orthanc_timestamp(facts.completion_time)
    if facts.state is JobState.RUNNING and facts.fraction > 0.01 and facts.runtime > 0:
        remaining = facts.runtime * (1 - facts.fraction) / facts.fraction
        answer["EstimatedTimeOfArrival"] = orthanc_timestamp(now + timedelta(seconds=remaining))
    if facts.attempts:
        answer["Attempts"] = facts.attempts  # ours: present once the job was retried
    if facts.user_data is not NO_USER_DATA:
        answer["UserData"] = facts.user_data
    return answer


@dataclass(eq=False)
class JobRecord:
    job: Job
    priority: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user_data: Any = NO_USER_DATA
    status: AsyncValue[JobState] = field(default_factory=lambda: AsyncValue(JobState.PENDING))
    creation_time: datetime = field(default_factory=utc_now)
    last_change: datetime = field(default_factory=utc_now)
    completion_time: datetime | None = None
    runtime: float = 0.0  # seconds spent Running
    attempts: int = 0  # retries after a transient failure (JobsRetry), until a resubmission
    error_code: ErrorCode = ErrorCode.SUCCESS
    error_details: str = ""
    # Run-time only, never saved:
    request: Request | None = None
    scope: trio.CancelScope | None = None
    run_mark: float = 0.0  # trio time of the last runtime accounting
    ticket: int | None = None  # queue entry; None when not queued
    stop_hooks: AsyncValue[int] = field(default_factory=lambda: AsyncValue(0))  # stop hooks still running
    generation: int = 0  # cluster: the claim of the row this member's lease is for

    @property
    def state(self) -> JobState:
        return self.status.value

    @property
    def completed(self) -> Completion:
        """Set on Success or Failure."""
        return Completion(self.status)

    def set_state(self, state: JobState) -> None:
        self.status.value = state
        self.last_change = utc_now()

    def facts(self) -> PublicFacts:
        """What GET /jobs/{id} shows of the job now."""
        return PublicFacts(
            id=self.id,
            type_name=self.job.type_name,
            state=self.state,
            priority=self.priority,
            content=self.job.content(),
            fraction=self.job.progress(),
            creation_time=self.creation_time,
            completion_time=self.completion_time,
            runtime=self.runtime,
            error_code=self.error_code,
            error_details=self.error_details,
            attempts=self.attempts,
            user_data=self.user_data,
        )

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The job as GET /jobs/{id} shows it."""
        return job_answer(self.facts(), now)

    def shared_form(self) -> dict[str, Any]:
        """The job as a JSON object: what SaveJobs writes, and (with what any member shows of it)
        a cluster's row. ``Job`` is None for a job whose state cannot be saved."""
        form: dict[str, Any] = {
            "ID": self.id,
            "Type": self.job.type_name,
            "State": self.state.value,
            "Priority": self.priority,
            "Permissive": self.job.permissive,
            "CreationTime": self.creation_time.isoformat(),
            "LastStateChange": self.last_change.isoformat(),
            "CompletionTime": self.completion_time.isoformat() if self.completion_time else None,
            "RuntimeMs": round(self.runtime * 1000),
            "ErrorCode": int(self.error_code),
            "ErrorDetails": self.error_details,
            "Attempts": self.attempts,
            "Job": self.job.serialize(),
        }
        if self.user_data is not NO_USER_DATA:
            form["UserData"] = self.user_data
        return form

    def saved_form(self) -> dict[str, Any] | None:
        """What persistence writes, or None for jobs that are never saved."""
        form = self.shared_form()
        return None if form["Job"] is None else form

    @classmethod
    def from_saved(cls, form: dict[str, Any]) -> JobRecord:
        """Rebuild a saved job; raises KeyError/ValueError/TypeError/OrthancError if it cannot be."""
        job = job_type(form["Type"]).deserialize(form["Job"])
        job.permissive = bool(form["Permissive"])
        completion = form["CompletionTime"]
        return cls(
            job=job,
            priority=int(form["Priority"]),
            id=str(form["ID"]),
            user_data=form.get("UserData", NO_USER_DATA),
            status=AsyncValue(JobState(form["State"])),
            creation_time=datetime.fromisoformat(form["CreationTime"]),
            last_change=datetime.fromisoformat(form["LastStateChange"]),
            completion_time=datetime.fromisoformat(completion) if completion else None,
            runtime=int(form["RuntimeMs"]) / 1000,
            error_code=ErrorCode(int(form["ErrorCode"])),
            error_details=str(form["ErrorDetails"]),
            attempts=int(form.get("Attempts", 0)),  # absent from jobs saved before retries existed
        )
