"""ZIP archives and DICOMDIR media: /{level}/{id}/archive|media and /tools/create-*.

Thin: read the options, expand the resources (which fixes the job's figures),
then either stream the ZIP as it is built or hand it to an asynchronous job.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydicom.uid import UID
from quart import Blueprint, Response, request

from ...body_fields import boolean, string, string_list
from ...errors import ErrorCode, OrthancError
from ...jobs.submit import SubmitOptions, submit, submit_options
from ...jobs.types.archive import FileDelivery, StreamDelivery, archive_folder, archive_job
from ...services.archive_plan import ArchiveKind
from ..answers import flag, json_answer, json_body, node

blueprint = Blueprint("archive", __name__)

_KINDS = {"archive": ArchiveKind.ARCHIVE, "media": ArchiveKind.MEDIA}
_NO_RESOURCES = "Expected a list of resources to archive in the body"
_NOT_IDS = "Expected a list of strings (Orthanc identifiers)"


def _transcode(value: Any) -> str | None:
    """Transcoding is not done yet: the UID is only checked, files are copied unchanged."""
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


async def _create(
    resources: list[str], kind: ArchiveKind, options: SubmitOptions, filename: str, **job_options: Any
) -> Response:
    context = node()
    engine = context.jobs
    if not options.synchronous:
        job = archive_job(kind, resources, FileDelivery(archive_folder(context.settings.storage)), **job_options)
        return json_answer(await submit(engine, job, options))
    delivery = StreamDelivery()
    job = archive_job(kind, resources, delivery, **job_options)
    await job.start(context.services)  # unknown resources are refused before the headers go out
    body = delivery.chunks(partial(engine.submit, job, priority=options.priority, user_data=options.user_data))
    # Headers at once, then the ZIP as it is built: chunked, no Content-Length.
    return Response(body, content_type="application/zip", headers={"Content-Disposition": f'filename="{filename}"'})


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
