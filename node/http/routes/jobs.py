"""/jobs: the registry, user actions on jobs (pause, resume, cancel, resubmit) and their outputs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import trio
from quart import Blueprint, Response, request

from ...errors import ErrorCode, NoAnswer, OrthancError
from ...jobs.engine import JobsEngine
from ...jobs.job import JobOutput
from ...units import MEGABYTE
from ..answers import flag, json_answer, node, text_answer

blueprint = Blueprint("jobs", __name__)

_CHUNK = MEGABYTE


@blueprint.route("/jobs")
async def list_jobs() -> Response:
    engine = node().jobs
    return json_answer(await engine.answers() if flag("expand") else await engine.ids())


async def job_info(engine: JobsEngine, job_id: str) -> dict[str, Any]:
    """The answer of GET /jobs/{id} (served by the fast path; the route below serves HEAD and DELETE)."""
    answer = await engine.answer(job_id)
    if answer is None:
        raise NoAnswer
    return answer


@blueprint.route("/jobs/<job_id>", methods=["GET", "DELETE"])
async def job(job_id: str) -> Response:
    engine = node().jobs
    if request.method == "DELETE":
        if not await engine.remove(job_id):
            raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"No job found with this id: {job_id}")
        return text_answer("")
    return json_answer(await job_info(engine, job_id))


@blueprint.route("/jobs/<job_id>/<any(cancel, pause, resume, resubmit):action>", methods=["POST"])
async def job_action(job_id: str, action: str) -> Response:
    """200 {} when allowed or without effect; an empty 400 for an unknown job or a refused action."""
    if not await node().jobs.act(action, job_id):
        raise NoAnswer
    return json_answer({})


@blueprint.route("/jobs/<job_id>/<key>", methods=["GET", "DELETE"])
async def job_output(job_id: str, key: str) -> Response:
    engine = node().jobs
    no_output = OrthancError(ErrorCode.INEXISTENT_ITEM, f"Job has no such output: {key}")
    if request.method == "DELETE":
        if not await engine.remove_output(job_id, key):
            raise no_output
        return text_answer("")
    output = await engine.find_output(job_id, key)
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
