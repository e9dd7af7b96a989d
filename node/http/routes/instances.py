"""Uploading instances and reading their file and tags."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from quart import Blueprint, Response, request

from ...context import NodeContext
from ...dicom.content_path import NotInDataset, content_at
from ...dicom.ids import Level
from ...dicom.json_elements import BINARY_VRS
from ...dicom.json_view import TagFormat, dataset_to_json
from ...dicom.tags import parse_tag
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...offload import offload
from ..answers import empty, error_body, json_answer, node, request_origin, tag_format
from ..inflate import gunzip
from ..multipart import boundary_of, file_parts
from ..spool import SpooledBody, receive_upload
from ..uploads import store_content

log = logging.getLogger(__name__)
blueprint = Blueprint("instances", __name__)

# X-Requested-With of the uploads of Orthanc Explorer's form (jQuery File Upload).
EXPLORER_REQUEST = "XMLHttpRequest"
HTTP_SERVER_ERROR = 500


def _temporary_folder() -> Path | None:
    return node().settings.storage.temporary_directory


def _limit_bytes() -> int:
    return node().settings.http.maximum_request_size


async def _store_content(content: SpooledBody) -> list[dict[str, str]] | dict[str, str]:
    return await store_content(node(), content, request_origin())


def _failed_part(filename: str, error: OrthancError) -> dict[str, Any]:
    """The answer's entry for a part that could not be stored: its error, as an error answer carries it."""
    return {"Filename": filename, "Status": "Failure", **error_body(error, request.method, request.path)}


async def _store_form(body: SpooledBody, boundary: bytes) -> Response:
    """Every file of a form, in order, each with its own entry in the answer.

    A part the node refuses (not DICOM, say) gets an entry with its error and the next
    parts are still stored; an error of the node itself (5xx: disk full...) ends the request.
    One file answers as a plain upload does; if no file could be stored, the first error is the answer.
    """
    entries: list[dict[str, Any]] = []
    first_error: OrthancError | None = None
    stored_any = False
    parts = file_parts(body, boundary, _temporary_folder())
    try:
        while (part := await offload(next, parts, None)) is not None:
            try:
                stored = await _store_content(part.content)
            except OrthancError as error:
                if error.http_status >= HTTP_SERVER_ERROR:
                    raise
                log.warning("upload: skipping the form part %r: %s", part.filename, error)
                first_error = first_error or error
                entries.append(_failed_part(part.filename, error))
            else:
                stored_any = stored_any or bool(stored)
                entries += stored if isinstance(stored, list) else [stored]
            finally:
                part.content.close()
    finally:
        parts.close()
    if first_error is not None and not stored_any:
        raise first_error
    if not entries:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The multipart form holds no file")
    return json_answer(entries[0] if len(entries) == 1 else entries)


async def _store_explorer_form(body: SpooledBody, boundary: bytes) -> Response:
    """The upload form of Orthanc Explorer, answered as Orthanc does: every file in order, an
    empty 200 once all are stored, and the error of the first file refused (those before it stay)."""
    parts = file_parts(body, boundary, _temporary_folder())
    try:
        while (part := await offload(next, parts, None)) is not None:
            try:
                await _store_content(part.content)
            finally:
                part.content.close()
    finally:
        parts.close()
    return empty(200)


# The fast path answers the uploads of a file or a ZIP; this route serves forms and gzip-encoded bodies.
# Its body is streamed: see STREAMED_ROUTES.
@blueprint.route("/instances", methods=["POST"])
async def upload() -> Response:
    folder, limit = _temporary_folder(), _limit_bytes()
    body = await receive_upload(request.scope, limit, folder)
    try:
        if request.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
            compressed, body = body, await offload(gunzip, body, limit, folder)
            compressed.close()
        boundary = boundary_of(request.headers.get("Content-Type", ""))
        if boundary is not None:
            if request.headers.get("X-Requested-With") == EXPLORER_REQUEST:
                return await _store_explorer_form(body, boundary)
            return await _store_form(body, boundary)
        return json_answer(await _store_content(body))
    finally:
        body.close()


async def _require_instance(public_id: str) -> None:
    """An unknown instance is Orthanc's JSON error 17 on these routes too, not a bare 404."""
    if not await node().resources.exists(public_id, Level.INSTANCE):
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")


DICOM_JSON = "application/dicom+json"


@dataclass(frozen=True)
class InstanceFile:
    """GET /instances/{id}/file: the file as stored, or its DICOM JSON for clients that ask for it."""

    body: bytes
    content_type: str
    filename: str | None  # the name offered to save it under (Content-Disposition)
    opened: tuple[int, int] | None = None  # instead of the body: the file's descriptor and size


async def instance_file(context: NodeContext, public_id: str, accept: str, *, open_file: bool = False) -> InstanceFile:
    """The answer of GET /instances/{id}/file (one index lookup); error 17 for an unknown instance.
    ``open_file``: an uncompressed file is opened, not read (for the caller to send and close)."""
    resources = context.resources
    if DICOM_JSON in accept:
        dataset = await resources.instance_dataset(public_id)
        return InstanceFile((await offload(dataset.to_json)).encode(), DICOM_JSON, None)
    attachment = await resources.instance_attachment(public_id)
    filename = f"{attachment.uuid}.dcm"
    if open_file and (fd := resources.open_attachment(attachment)) is not None:
        return InstanceFile(b"", "application/dicom", filename, (fd, attachment.compressed_size))
    data = await resources.read_attachment(attachment)
    return InstanceFile(data, "application/dicom", filename)


# GET is answered by the fast path; this route serves HEAD.
@blueprint.route("/instances/<public_id>/file")
async def file_of_instance(public_id: str) -> Response:
    found = await instance_file(node(), public_id, request.headers.get("Accept", ""))
    headers = {"Content-Disposition": f'filename="{found.filename}"'} if found.filename is not None else None
    return Response(found.body, content_type=found.content_type, headers=headers)


def _ignore_length() -> frozenset[int]:
    names = request.args.get("ignore-length", "")
    return frozenset(int(parse_tag(n)) for n in names.split(",") if n.strip())


@blueprint.route("/instances/<public_id>/tags")
async def instance_tags(public_id: str) -> Response:
    await _require_instance(public_id)
    fmt = tag_format(TagFormat.FULL)
    return json_answer(await node().resources.read_instance(public_id, dataset_to_json, fmt, _ignore_length()))


@blueprint.route("/instances/<public_id>/simplified-tags")
async def instance_simplified_tags(public_id: str) -> Response:
    await _require_instance(public_id)
    ignore_length = _ignore_length()
    return json_answer(
        await node().resources.read_instance(public_id, dataset_to_json, TagFormat.SIMPLIFY, ignore_length)
    )


def _header_json(dataset: Dataset, fmt: TagFormat) -> dict[str, Any]:
    """The file meta header without its binary elements (FileMetaInformationVersion), which
    Orthanc leaves out of this view."""
    meta = dataset.file_meta
    shown = Dataset({element.tag: element for element in meta.elements() if element.VR not in BINARY_VRS})
    return dataset_to_json(shown, fmt)


@blueprint.route("/instances/<public_id>/header")
async def instance_header(public_id: str) -> Response:
    await _require_instance(public_id)
    return json_answer(await node().resources.read_instance(public_id, _header_json, tag_format(TagFormat.FULL)))


@blueprint.route("/instances/<public_id>/content")
@blueprint.route("/instances/<public_id>/content/<path:path>")
async def instance_content(public_id: str, path: str = "") -> Response:
    await _require_instance(public_id)
    try:
        content = await node().resources.read_instance(public_id, content_at, path)
    except NotInDataset:
        raise NoAnswer() from None
    if isinstance(content, bytes):
        return Response(content, content_type="application/octet-stream")
    return json_answer(content)
