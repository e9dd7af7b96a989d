"""The one way every job-creating route submits its job.

Routes parse the common body fields with :func:`submit_options` and hand the
job to :func:`submit`, which answers ``{ID, Path}`` at once or waits for the
job and answers its final Content, raising the job's error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..body_fields import boolean, integer
from ..errors import ErrorCode, OrthancError
from .engine import JobsEngine
from .job import Job
from .record import NO_USER_DATA, JobState

HISTORY_DISABLED = 'Cannot retrieve the status of the job, make sure that "JobsHistorySize" is not 0'


@dataclass(frozen=True)
class SubmitOptions:
    synchronous: bool
    priority: int = 0
    permissive: bool = False
    user_data: Any = NO_USER_DATA


def _boolean(body: dict[str, Any], field: str) -> bool:
    return boolean(body[field], ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {field}")


def submit_options(body: Any, *, synchronous: bool) -> SubmitOptions:
    """Synchronous / Asynchronous / Priority / Permissive / UserData of a request body.

    ``synchronous`` is the route's default; a body that is not a JSON object keeps every default.
    """
    if not isinstance(body, dict):
        return SubmitOptions(synchronous=synchronous)
    if "Synchronous" in body:
        synchronous = _boolean(body, "Synchronous")
    elif "Asynchronous" in body:
        synchronous = not _boolean(body, "Asynchronous")
    priority = integer(body.get("Priority", 0), ErrorCode.BAD_FILE_FORMAT, "Integer value expected in field: Priority")
    permissive = _boolean(body, "Permissive") if "Permissive" in body else False
    return SubmitOptions(synchronous, priority, permissive, body.get("UserData", NO_USER_DATA))


async def submit(engine: JobsEngine, job: Job, options: SubmitOptions) -> dict[str, Any]:
    """Queue the job; the asynchronous answer, or (synchronous) the job's final Content."""
    job.permissive = options.permissive
    record = await engine.submit(job, priority=options.priority, user_data=options.user_data)
    if not options.synchronous:
        return {"ID": record.id, "Path": f"/jobs/{record.id}"}
    final = await engine.wait_completed(record)
    if final is None:
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, HISTORY_DISABLED)
    if final.state is JobState.SUCCESS:
        return final.content
    raise OrthancError(final.error_code, final.error_details)
