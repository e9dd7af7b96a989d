"""Uploading instances and reading their file and tags."""

from __future__ import annotations

import gzip
import io
import logging
import zipfile
import zlib

from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from quart import Blueprint, Response, request

from ...dicom.ids import Level
from ...dicom.json_view import TagFormat, dataset_to_json
from ...dicom.tags import parse_tag
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...offload import offload
from ..answers import json_answer, node, request_origin, tag_format

log = logging.getLogger(__name__)
blueprint = Blueprint("instances", __name__)


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot decompress the gzip body") from exc


async def _decoded_body(data: bytes) -> bytes:
    """The body as sent, gunzipped (off the Trio thread) when its Content-Encoding says so."""
    if request.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
        return await offload(_gunzip, data)
    return data


def _zip_members(data: bytes) -> list[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(info.filename, archive.read(info)) for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Cannot read the ZIP archive") from exc


async def _store_zip(data: bytes) -> list[dict[str, str]]:
    answers = []
    origin = request_origin()
    members = await offload(_zip_members, data)
    for name, content in members:
        if not content:
            continue
        try:
            result = await node().ingest.store(content, origin)
        except OrthancError as error:
            if error.code in (ErrorCode.BAD_FILE_FORMAT, ErrorCode.INEXISTENT_TAG):
                log.warning("skipping ZIP entry %s: %s", name, error)
                continue
            raise
        answers.append(result.answer())
    return answers


@blueprint.route("/instances", methods=["POST"])
async def upload() -> Response:
    files = await request.files
    if files:
        answers = []
        for storage in files.values():
            content = await offload(storage.read)  # may be spooled to disk
            if content[:4] == b"PK\x03\x04":
                answers += await _store_zip(content)
            else:
                answers.append((await node().ingest.store(content, request_origin())).answer())
        return json_answer(answers[0] if len(answers) == 1 else answers)
    data = await _decoded_body(await request.get_data(as_text=False))
    if data[:4] == b"PK\x03\x04":
        return json_answer(await _store_zip(data))
    result = await node().ingest.store(data, request_origin())
    return json_answer(result.answer())


async def _require_instance(public_id: str) -> None:
    if not await node().resources.exists(public_id, Level.INSTANCE):
        raise NoAnswer()


@blueprint.route("/instances/<public_id>/file")
async def instance_file(public_id: str) -> Response:
    await _require_instance(public_id)
    if "application/dicom+json" in request.headers.get("Accept", ""):
        dataset = await node().resources.instance_dataset(public_id)
        return Response(await offload(dataset.to_json), content_type="application/dicom+json")
    data = await node().resources.instance_file(public_id)
    attachment = await node().index.dicom_attachment(public_id)
    name = attachment.uuid if attachment else public_id
    return Response(data, content_type="application/dicom", headers={"Content-Disposition": f'filename="{name}.dcm"'})


def _ignore_length() -> frozenset[int]:
    names = request.args.get("ignore-length", "")
    return frozenset(int(parse_tag(n)) for n in names.split(",") if n.strip())


@blueprint.route("/instances/<public_id>/tags")
async def instance_tags(public_id: str) -> Response:
    await _require_instance(public_id)
    dataset = await node().resources.instance_dataset(public_id)
    fmt = tag_format(TagFormat.FULL)
    return json_answer(await offload(dataset_to_json, dataset, fmt, _ignore_length()))


@blueprint.route("/instances/<public_id>/simplified-tags")
async def instance_simplified_tags(public_id: str) -> Response:
    await _require_instance(public_id)
    dataset = await node().resources.instance_dataset(public_id)
    return json_answer(await offload(dataset_to_json, dataset, TagFormat.SIMPLIFY, _ignore_length()))


@blueprint.route("/instances/<public_id>/header")
async def instance_header(public_id: str) -> Response:
    await _require_instance(public_id)
    dataset = await node().resources.instance_dataset(public_id)
    fmt = tag_format(TagFormat.FULL)
    return json_answer(dataset_to_json(dataset.file_meta, fmt))


@blueprint.route("/instances/<public_id>/content")
@blueprint.route("/instances/<public_id>/content/<path:path>")
async def instance_content(public_id: str, path: str = "") -> Response:
    await _require_instance(public_id)
    dataset = await node().resources.instance_dataset(public_id)
    parts = [p for p in path.split("/") if p]
    current = dataset
    while True:
        if not parts:
            return json_answer([f"{e.tag.group:04x}-{e.tag.element:04x}" for e in current])
        try:
            tag = parse_tag(parts.pop(0))
        except OrthancError:
            raise NoAnswer() from None
        if tag not in current:
            raise NoAnswer()
        element = current[tag]
        if element.VR != "SQ":
            if parts:
                raise NoAnswer()
            raw = current.get_item(tag)
            value = raw.value if isinstance(raw.value, bytes) else _encode_value(element)
            return Response(value, content_type="application/octet-stream")
        if not parts:
            return json_answer([str(i) for i in range(len(element.value))])
        index = parts.pop(0)
        if not index.isdigit() or int(index) >= len(element.value):
            raise NoAnswer()
        current = element.value[int(index)]


def _encode_value(element: DataElement) -> bytes:
    """Raw bytes of an already-decoded element, re-encoded as written in the file."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    write_data_element(buffer, element)
    return buffer.getvalue()[8:]
