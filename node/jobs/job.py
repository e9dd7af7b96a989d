"""The protocol every job type implements, and the registry of types by name.

The engine knows jobs only through :class:`Job`. A job is a sequence of steps;
the engine runs each step inside the job's own cancel scope, so a pause or a
cancel interrupts a step at any ``await`` (even one blocked on the network).
That is why a step follows one rule: **it changes the job's state only after
its last ``await``**. Trio runs nothing else between two checkpoints, so the
change is atomic: an interrupted step leaves no trace and is redone on resume,
and the REST API, the persister and a resume always see the job at a step
boundary.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..errors import ErrorCode, OrthancError
from ..offload import offload
from ..services.bundle import ServiceBundle


class Step(enum.Enum):
    """What a step tells the engine."""

    CONTINUE = "continue"
    DONE = "done"


@dataclass(frozen=True)
class Retry:
    """A step asks to be run again after ``seconds`` (the job goes through the Retry state).

    With a ``failure`` (a transient one: a remote that refused or timed out), the engine
    counts the attempt; once ``limit`` retries are spent, the job fails with that error
    instead (or, permissive, skips the step) rather than retrying forever.
    """

    seconds: float
    failure: OrthancError | None = None
    limit: int = 0


StepOutcome = Step | Retry


class StopReason(enum.Enum):
    """Why a job left the Running state (or, for CANCELED, a queue)."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    CANCELED = "Canceled"
    PAUSED = "Paused"  # also used when the node stops: the job resumes at restart
    RETRY = "Retry"


@dataclass
class JobOutput:
    """A job's product, served by GET /jobs/{id}/archive: bytes in memory, or a file it owns.

    The engine keeps at most MediaArchiveSize outputs and discards the least
    recently used; discarding deletes the file.
    """

    data: bytes | None = None
    path: Path | None = None
    content_type: str = "application/zip"
    filename: str = "archive.zip"

    async def discard(self) -> None:
        if self.path is not None:
            await offload(partial(self.path.unlink, missing_ok=True))


class Job(abc.ABC):
    """One job of a registered type. Subclasses set ``type_name`` and register with :func:`register_job_type`."""

    type_name: ClassVar[str]
    #: Set at submission from the request's "Permissive" field (a failed step is counted, not fatal)
    #: and saved by the engine.
    permissive: bool = False

    @abc.abstractmethod
    def content(self) -> dict[str, Any]:
        """The public ``Content`` of GET /jobs/{id} (a new dict at each call)."""

    @abc.abstractmethod
    def progress(self) -> float:
        """How far the job got, as a fraction 0..1 of its steps."""

    @abc.abstractmethod
    async def step(self, services: ServiceBundle) -> StepOutcome:
        """Run the next step; raise :class:`OrthancError` to fail the job.

        May be cancelled at any ``await``: change the job's state only after the
        last one (see the module docstring).
        """

    async def start(self, services: ServiceBundle) -> None:
        """Submission hook: runs when the job is submitted, before it is queued.

        An error raised here refuses the submission (the job is never registered).
        """
        return None  # optional hook

    async def stop(self, services: ServiceBundle, reason: StopReason) -> None:
        """Release what the job holds (associations, temporary files) after it leaves Running.

        Runs shielded from cancellation with a time bound; may run more than once
        (paused, then cancelled).
        """
        return None  # optional hook

    def serialize(self) -> dict[str, Any] | None:
        """What :meth:`deserialize` needs to continue the job; None: never saved (Archive/Media)."""
        return None

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"Jobs of type {cls.type_name} cannot be reloaded")

    def reset(self) -> None:
        """Back to the first step, for a resubmission; raise OrthancError to refuse it."""
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, f"Jobs of type {self.type_name} cannot be resubmitted")

    def skip_failed_step(self, error: OrthancError) -> StepOutcome:
        """Permissive mode: record the failure of the current step and move past it.

        Job types without a permissive mode keep this default, which fails the job.
        """
        raise error

    def output(self) -> JobOutput | None:
        """Called once when the job succeeds: its archive, if it makes one."""
        return None


JobT = TypeVar("JobT", bound=type[Job])

_TYPES: dict[str, type[Job]] = {}


def register_job_type(cls: JobT) -> JobT:
    """Class decorator: makes ``cls`` known by its ``type_name`` to reload saved jobs."""
    _TYPES[cls.type_name] = cls
    return cls


def job_type(name: str) -> type[Job]:
    try:
        return _TYPES[name]
    except KeyError:
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"Unknown job type: {name}") from None
