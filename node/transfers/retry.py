"""When a failed transfer is worth trying again, and how often (the ``JobsRetry`` option).

A remote that refused the connection, reset it, timed out, rejected the association for
now, or answered HTTP 5xx may well accept a moment later: those failures are transient,
and the job asks the engine to run the step again after a backoff, from the instance it
stopped at. A remote that does not know our AE title, accepts no context for what we
send, or answers HTTP 4xx will answer the same next time: those fail at once, whatever
the policy. Orthanc never retries; so, by default, neither do we (``Attempts`` 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..body_fields import integer, json_object
from ..config import Config
from ..errors import ErrorCode, OrthancError
from ..jobs.job import Retry
from ..net.ul.requestor import AssociationFailed

DEFAULT_BACKOFF = 5.0  # seconds


class TransferFailed(OrthancError):
    """A transfer that did not go through (error 9 unless told otherwise), and whether it may later."""

    def __init__(self, details: str, *, transient: bool, code: ErrorCode = ErrorCode.NETWORK_PROTOCOL) -> None:
        super().__init__(code, details)
        self.transient = transient


def is_transient(error: OrthancError) -> bool:
    """Whether trying the same transfer again later may succeed."""
    return isinstance(error, (AssociationFailed, TransferFailed)) and error.transient


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 0  # retries after a transient failure, per job; 0: fail at once, as Orthanc
    backoff: float = DEFAULT_BACKOFF  # seconds between a failure and the next attempt

    @classmethod
    def from_json(cls, value: Any) -> RetryPolicy:
        """``{"Attempts": n, "BackoffSeconds": s}``: the option, or a job's saved copy of it."""
        fields = json_object(value, ErrorCode.BAD_FILE_FORMAT, "JobsRetry must be a JSON object")
        attempts = integer(fields.get("Attempts", 0), ErrorCode.BAD_FILE_FORMAT, "JobsRetry.Attempts: integer expected")
        backoff = fields.get("BackoffSeconds", DEFAULT_BACKOFF)
        if isinstance(backoff, bool) or not isinstance(backoff, (int, float)) or backoff < 0 or attempts < 0:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "JobsRetry: Attempts and BackoffSeconds must be positive")
        return cls(attempts, float(backoff))

    @classmethod
    def from_config(cls, config: Config) -> RetryPolicy:
        return cls.from_json(config["JobsRetry"])

    def to_json(self) -> dict[str, Any]:
        return {"Attempts": self.attempts, "BackoffSeconds": self.backoff}


def retry_or_raise(error: OrthancError, policy: RetryPolicy) -> Retry:
    """The outcome of a step that failed with ``error``: a permanent failure is raised as it is; a
    transient one becomes a :class:`Retry` after the backoff, which the engine counts and turns back
    into ``error`` once ``policy.attempts`` retries are spent (at once when the policy is off)."""
    if not is_transient(error):
        raise error
    return Retry(policy.backoff, failure=error, limit=policy.attempts)
