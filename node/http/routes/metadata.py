"""Metadata and attachments of a resource: /{level}/{id}/metadata and /attachments.

As in Orthanc, a name is resolved first (error 7 when unknown), then a write to a
built-in entry is refused with an empty 403, and only then is the resource looked up.
"""

from __future__ import annotations

import hashlib

import trio
from quart import Blueprint, Response, request

from ...clock import orthanc_date
from ...dicom.ids import Level
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...services.metadata import MetadataNames, attachment_name, attachment_number, is_user_number
from ...storage.index import Attachment, ResourceRecord
from ...storage.index.base import ATTACHMENT_DICOM, COMPRESSION_NONE, COMPRESSION_ZLIB
from ..answers import empty, flag, json_answer, node, text_answer

blueprint = Blueprint("metadata", __name__)

_LEVELS = {level.plural: level for level in Level}
_PREFIX = "/<any(patients, studies, series, instances):plural>/<public_id>"
# What Orthanc lists under /attachments/{name}.
_ATTACHMENT_OPERATIONS = [
    "compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info",
    "is-compressed", "md5", "size", "uncompress", "verify-md5", "uuid",
]  # fmt: skip


def _names() -> MetadataNames:
    return MetadataNames(node().config["UserMetadata"])


async def _record(plural: str, public_id: str) -> ResourceRecord:
    return await node().resources.get(public_id, _LEVELS[plural])


async def _log_change(change_type: str, record: ResourceRecord) -> None:
    await node().index.log_change(change_type, record.public_id, record.level, orthanc_date())


@blueprint.route(f"{_PREFIX}/metadata")
async def list_metadata(plural: str, public_id: str) -> Response:
    record = await _record(plural, public_id)
    pairs = _names().listing(record.metadata, numeric=flag("numeric"))
    if flag("expand"):
        return json_answer(dict(sorted(pairs)))
    return json_answer([name for name, _ in pairs])


@blueprint.route(f"{_PREFIX}/metadata/<name>", methods=["GET", "PUT", "DELETE"])
async def one_metadata(plural: str, public_id: str, name: str) -> Response:
    key = _names().key(name)
    if request.method != "GET" and not key.writable:
        return empty(403)
    record = await _record(plural, public_id)
    if request.method == "GET":
        if key.stored_as not in record.metadata:
            raise NoAnswer()
        return text_answer(record.metadata[key.stored_as])
    if request.method == "PUT":
        await node().index.set_metadata(public_id, key.stored_as, await request.get_data(as_text=True))
    elif not await node().index.delete_metadata(public_id, key.stored_as):
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    await _log_change("UpdatedMetadata", record)
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments")
async def list_attachments(plural: str, public_id: str) -> Response:
    await _record(plural, public_id)
    numbers = sorted(await node().index.attachments(public_id))
    if flag("full"):
        return json_answer({attachment_name(n): n for n in numbers})
    return json_answer([attachment_name(n) for n in numbers])


async def _attachment(plural: str, public_id: str, name: str) -> Attachment:
    number = attachment_number(name)
    await _record(plural, public_id)
    attachment = (await node().index.attachments(public_id)).get(number)
    if attachment is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return attachment


@blueprint.route(f"{_PREFIX}/attachments/<name>")
async def attachment_operations(plural: str, public_id: str, name: str) -> Response:
    await _attachment(plural, public_id, name)
    return json_answer(_ATTACHMENT_OPERATIONS)


@blueprint.route(f"{_PREFIX}/attachments/<name>", methods=["PUT"])
async def put_attachment(plural: str, public_id: str, name: str) -> Response:
    number = attachment_number(name)
    if not is_user_number(number):
        return empty(403)
    record = await _record(plural, public_id)
    data = await request.get_data(as_text=False)
    files = node().files
    file_uuid, stored_size = await trio.to_thread.run_sync(files.write, data)
    md5 = hashlib.md5(data).hexdigest() if node().config["StoreMD5ForAttachments"] else ""
    raw = await trio.to_thread.run_sync(files.read_raw, file_uuid) if files.compress and md5 else None
    attachment = Attachment(
        content_type=number,
        uuid=file_uuid,
        uncompressed_size=len(data),
        compressed_size=stored_size,
        uncompressed_md5=md5,
        compressed_md5=hashlib.md5(raw).hexdigest() if raw is not None else md5,
        compression=COMPRESSION_ZLIB if files.compress else COMPRESSION_NONE,
    )
    replaced = await node().index.set_attachment(public_id, attachment)
    if replaced is not None:
        await trio.to_thread.run_sync(files.remove, replaced)
    await _log_change("UpdatedAttachment", record)
    return json_answer({})


@blueprint.route(f"{_PREFIX}/attachments/<name>", methods=["DELETE"])
async def delete_attachment(plural: str, public_id: str, name: str) -> Response:
    number = attachment_number(name)
    if not is_user_number(number):
        return empty(403)
    record = await _record(plural, public_id)
    file_uuid = await node().index.delete_attachment(public_id, number)
    if file_uuid is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    await trio.to_thread.run_sync(node().files.remove, file_uuid)
    await _log_change("UpdatedAttachment", record)
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments/<name>/data")
async def attachment_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    data = await node().resources.read_attachment(attachment)
    dicom = attachment.content_type == ATTACHMENT_DICOM
    return Response(data, content_type="application/dicom" if dicom else "application/octet-stream")


@blueprint.route(f"{_PREFIX}/attachments/<name>/compressed-data")
async def attachment_compressed_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    data = await _stored_bytes(attachment)
    return Response(data, content_type="application/octet-stream")


async def _stored_bytes(attachment: Attachment) -> bytes:
    try:
        return await trio.to_thread.run_sync(node().files.read_raw, attachment.uuid)
    except FileNotFoundError as exc:
        raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file: {attachment.uuid}") from exc


_PROPERTIES = 'any(size, "compressed-size", md5, "compressed-md5", "is-compressed")'


@blueprint.route(f"{_PREFIX}/attachments/<name>/<{_PROPERTIES}:what>")
async def attachment_property(plural: str, public_id: str, name: str, what: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    values = {
        "size": str(attachment.uncompressed_size),
        "compressed-size": str(attachment.compressed_size),
        "md5": attachment.uncompressed_md5,
        "compressed-md5": attachment.compressed_md5,
        "is-compressed": "1" if attachment.compression == COMPRESSION_ZLIB else "0",
    }
    if not values[what]:
        raise NoAnswer()  # MD5 not recorded (StoreMD5ForAttachments = false)
    return text_answer(values[what])


@blueprint.route(f"{_PREFIX}/attachments/<name>/info")
async def attachment_info(plural: str, public_id: str, name: str) -> Response:
    a = await _attachment(plural, public_id, name)
    return json_answer(
        {
            "CompressedMD5": a.compressed_md5,
            "CompressedSize": a.compressed_size,
            "ContentType": a.content_type,
            "UncompressedMD5": a.uncompressed_md5,
            "UncompressedSize": a.uncompressed_size,
            "Uuid": a.uuid,
        }
    )


@blueprint.route(f"{_PREFIX}/attachments/<name>/verify-md5", methods=["POST"])
async def verify_md5(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    if not attachment.uncompressed_md5:
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "No MD5 was recorded for this attachment")
    stored = await _stored_bytes(attachment)
    data = await node().resources.read_attachment(attachment)
    compressed_ok = not attachment.compressed_md5 or hashlib.md5(stored).hexdigest() == attachment.compressed_md5
    if not compressed_ok or hashlib.md5(data).hexdigest() != attachment.uncompressed_md5:
        raise OrthancError(ErrorCode.CORRUPTED_FILE, f"MD5 mismatch for attachment {name} of {public_id}")
    return json_answer({})
