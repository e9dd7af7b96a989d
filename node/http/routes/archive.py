"""ZIP archives and DICOMDIR media: /{level}/{id}/archive|media and /tools/create-*.

Thin: read the options, expand the resources (which fixes the job's figures),
then either stream the ZIP as it is built, build it whole before sending it
(SynchronousZipStream false), or hand it to an asynchronous job.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import trio
from pydicom.uid import UID
from quart import Blueprint, Response, request

from ...body_fields import boolean, string, string_list
from ...errors import ErrorCode, OrthancError
from ...jobs.record import JobState
from ...jobs.submit import SubmitOptions, submit, submit_options
from ...jobs.types.archive import (
    ArchiveJob,
    FileDelivery,
    SpooledDelivery,
    StreamDelivery,
    archive_folder,
    archive_job,
    shared_archive_folder,
)
from ...offload import offload
from ...services.archive_plan import ArchiveKind
from ...units import MEGABYTE
from ..answers import flag, json_answer, json_body, node

blueprint = Blueprint("archive", __name__)

ZIP_TYPE = "application/zip"
SPOOLED_CHUNK = MEGABYTE  # bytes read from a spooled ZIP per send

_KINDS = {"archive": ArchiveKind.ARCHIVE, "media": ArchiveKind.MEDIA}
_NO_RESOURCES = "Expected a list of resources to archive in the body"
_NOT_IDS = "Expected a list of strings (Orthanc identifiers)"


def _transcode(value: Any) -> str | None:
    """The ``Transcode`` of an archive: a transfer syntax UID (unknown: error 3)."""
    if value is None:
        return None
    value = string(value, ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Transcode")
    if not UID(value.strip()).is_transfer_syntax:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown transfer syntax: {value}")
    return value.strip()


def _extended(body: Any, default: bool) -> bool:
    if not isinstance(body, dict) or "Extended" not in body:
        return default
    return boolean(body["Extended"], ErrorCode.BAD_FILE_FORMAT, "Boolean value expected in field: Extended")


def _body_transcode(body: Any) -> str | None:
    return _transcode(body.get("Transcode")) if isinstance(body, dict) else None


def _resources_of(body: Any) -> list[str]:
    """The ``create-*`` body: a list of IDs, or an object with ``Resources``."""
    if body is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _NO_RESOURCES)
    if isinstance(body, dict):
        if "Resources" not in body:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Missing field Resources in the JSON body")
        body = body["Resources"]
    return string_list(body, ErrorCode.BAD_FILE_FORMAT, _NOT_IDS)


async def _spooled_answer(job: ArchiveJob, delivery: SpooledDelivery, options: SubmitOptions) -> Response:
    """Run the job to its end, then answer its ZIP with a Content-Length; a failure is a plain error answer.

    The ZIP's file is unlinked once open: whatever becomes of the answer, nothing is left behind.
    A request that ends before the job does cancels it (which removes the file).
    """
    engine = node().jobs
    await job.start(node().services)  # unknown resources are refused before the job is queued
    record = await engine.submit(job, priority=options.priority, user_data=options.user_data)
    try:
        await engine.wait_completed(record)
    finally:
        if not record.completed.is_set():
            with trio.CancelScope(shield=True):
                await engine.cancel(record.id)
    if record.state is not JobState.SUCCESS:
        # The job's own clean-up runs in the background: the answer does not wait for it.
        await trio.Path(delivery.path).unlink(missing_ok=True)
        raise OrthancError(record.error_code, record.error_details)
    file = await trio.open_file(delivery.path, "rb")
    await trio.Path(delivery.path).unlink()
    size = os.fstat(file.fileno()).st_size

    async def chunks() -> AsyncIterator[bytes]:
        async with file:
            while chunk := await file.read(SPOOLED_CHUNK):
                yield chunk

    return Response(chunks(), content_type=ZIP_TYPE, headers={"Content-Length": str(size)})


async def _create(
    resources: list[str], kind: ArchiveKind, options: SubmitOptions, filename: str, **job_options: Any
) -> Response:
    context = node()
    engine = context.jobs
    disposition = {"Content-Disposition": f'filename="{filename}"'}
    if not options.synchronous:
        storage = context.settings.storage
        # Made on first use: a folder created (on shared storage, perhaps) off the event loop.
        folder = await offload(shared_archive_folder if engine.clustered else archive_folder, storage)
        job = archive_job(kind, resources, FileDelivery(folder), **job_options)
        return json_answer(await submit(engine, job, options))
    if not context.settings.http.synchronous_zip_stream:
        spooled = SpooledDelivery(await offload(archive_folder, context.settings.storage))
        answer = await _spooled_answer(archive_job(kind, resources, spooled, **job_options), spooled, options)
        answer.headers.update(disposition)
        return answer
    delivery = StreamDelivery()
    job = archive_job(kind, resources, delivery, **job_options)
    await job.start(context.services)  # unknown resources are refused before the headers go out
    body = delivery.chunks(partial(engine.submit, job, priority=options.priority, user_data=options.user_data))
    # Headers at once, then the ZIP as it is built: chunked, no Content-Length.
    return Response(body, content_type=ZIP_TYPE, headers=disposition)


@blueprint.route("/<any(patients, studies, series):plural>/<public_id>/<any(archive, media):kind>", methods=["GET"])
async def resource_archive_get(plural: str, public_id: str, kind: str) -> Response:
    # Like Orthanc 1.10.1, the level in the URL is not checked: any resource ID is archived.
    return await _create(
        [public_id],
        _KINDS[kind],
        SubmitOptions(synchronous=True),
        f"{public_id}.zip",
        extended=kind == "media" and flag("extended"),
        transcode=_transcode(request.args.get("transcode")),
    )


@blueprint.route("/<any(patients, studies, series):plural>/<public_id>/<any(archive, media):kind>", methods=["POST"])
async def resource_archive_post(plural: str, public_id: str, kind: str) -> Response:
    body = await json_body()
    if body is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
    return await _create(
        [public_id],
        _KINDS[kind],
        submit_options(body, synchronous=True),
        f"{public_id}.zip",
        extended=_extended(body, False),
        transcode=_body_transcode(body),
    )


_TOOLS = {
    "create-archive": (ArchiveKind.ARCHIVE, False),
    "create-media": (ArchiveKind.MEDIA, False),
    "create-media-extended": (ArchiveKind.MEDIA, True),
}


@blueprint.route("/tools/<any('create-archive', 'create-media', 'create-media-extended'):tool>", methods=["POST"])
async def create_archive(tool: str) -> Response:
    kind, extended = _TOOLS[tool]
    body = await json_body()
    resources = _resources_of(body)
    return await _create(
        resources,
        kind,
        submit_options(body, synchronous=True),
        "Archive.zip",
        extended=_extended(body, extended),
        transcode=_body_transcode(body),
    )
