"""/jobs: the registry, user actions on jobs (pause, resume, cancel, resubmit) and their outputs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import trio
from quart import Blueprint, Response, request

from ...clock import utc_now
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...jobs.engine import JobsEngine
from ...jobs.job import JobOutput
from ...units import MEGABYTE
from ..answers import flag, json_answer, node, text_answer

blueprint = Blueprint("jobs", __name__)

_CHUNK = MEGABYTE


@blueprint.route("/jobs")
async def list_jobs() -> Response:
    records = sorted(node().jobs.records(), key=lambda record: record.id)
    if flag("expand"):
        now = utc_now()
        return json_answer([record.to_json(now) for record in records])
    return json_answer([record.id for record in records])


def job_info(engine: JobsEngine, job_id: str) -> dict[str, Any]:
    """The answer of GET /jobs/{id} (served by the fast path; the route below serves HEAD and DELETE)."""
    record = engine.get(job_id)
    if record is None:
        raise NoAnswer
    return record.to_json(utc_now())


@blueprint.route("/jobs/<job_id>", methods=["GET", "DELETE"])
async def job(job_id: str) -> Response:
    engine = node().jobs
    if request.method == "DELETE":
        if not engine.delete(job_id):
            raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"No job found with this id: {job_id}")
        return text_answer("")
    return json_answer(job_info(engine, job_id))


@blueprint.route("/jobs/<job_id>/<any(cancel, pause, resume, resubmit):action>", methods=["POST"])
async def job_action(job_id: str, action: str) -> Response:
    """200 {} when allowed or without effect; an empty 400 for an unknown job or a refused action."""
    engine = node().jobs
    if action == "pause":
        done = await engine.pause(job_id)
    elif action == "cancel":
        done = await engine.cancel(job_id)
    elif action == "resume":
        done = engine.resume(job_id)
    else:
        done = engine.resubmit(job_id)
    if not done:
        raise NoAnswer
    return json_answer({})


@blueprint.route("/jobs/<job_id>/<key>", methods=["GET", "DELETE"])
async def job_output(job_id: str, key: str) -> Response:
    engine = node().jobs
    no_output = OrthancError(ErrorCode.INEXISTENT_ITEM, f"Job has no such output: {key}")
    if request.method == "DELETE":
        if not engine.delete_output(job_id, key):
            raise no_output
        return text_answer("")
    output = engine.output(job_id, key)
    if output is None:
        raise no_output
    return await _output_answer(output)


async def _output_answer(output: JobOutput) -> Response:
    headers = {"Content-Disposition": f'filename="{output.filename}"'}
    if output.path is None:
        return Response(output.data or b"", content_type=output.content_type, headers=headers)
    # Opened now: the output may be evicted (its file deleted) while the answer streams.
    file = await trio.open_file(output.path, "rb")
    headers["Content-Length"] = str(os.fstat(file.fileno()).st_size)

    async def chunks() -> AsyncIterator[bytes]:
        async with file:
            while chunk := await file.read(_CHUNK):
                yield chunk

    return Response(chunks(), content_type=output.content_type, headers=headers)
