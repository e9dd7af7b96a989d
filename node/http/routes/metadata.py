"""Metadata and attachments of a resource: /{level}/{id}/metadata and /attachments.

As in Orthanc, a name is resolved first (error 7 when unknown), then a write to a
built-in entry is refused with an empty 403, and only then is the resource looked up.
Single metadata and attachments carry their ETag (see :mod:`node.services.revisions`):
a GET whose If-None-Match names it answers 304, a write honours If-Match and CheckRevisions.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from ...dicom.ids import Level
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...services.metadata import AttachmentNames, MetadataNames, is_user_number
from ...services.revisions import ETag, WriteCondition, parse_if_match, stored_etag, value_md5
from ...services.user_content import Attachment, ResourceRecord, UserContent, is_compressed
from ..answers import body_bytes, body_text, empty, flag, json_answer, node, text_answer

blueprint = Blueprint("metadata", __name__)

_PREFIX = "/<any(patients, studies, series, instances):plural>/<public_id>"
# What Orthanc lists under /attachments/{name}.
_ATTACHMENT_OPERATIONS = [
    "compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info",
    "is-compressed", "md5", "size", "uncompress", "verify-md5", "uuid",
]  # fmt: skip
_DICOM_MIME = "application/dicom"


def _names() -> MetadataNames:
    return MetadataNames(node().settings.user_metadata)


def _attachment_names() -> AttachmentNames:
    return AttachmentNames(node().settings.user_content_types)


def _content() -> UserContent:
    context = node()
    return UserContent(context.index, context.files, context.resources, store_md5=context.settings.storage.store_md5)


def _condition() -> WriteCondition:
    """The If-Match of the request (error 3 when malformed) and the CheckRevisions option."""
    header = request.headers.get("If-Match")
    return WriteCondition(None if header is None else parse_if_match(header), node().settings.check_revisions)


def _tagged(response: Response, etag: ETag) -> Response:
    """The answer with its ETag; an empty 304 instead when the client has that version already."""
    if request.headers.get("If-None-Match", "").strip() == etag.header():
        return empty(304, {"ETag": etag.header()})
    response.headers["ETag"] = etag.header()
    return response


async def _record(plural: str, public_id: str) -> ResourceRecord:
    return await node().resources.get(public_id, Level.from_plural(plural))


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
        value = record.metadata[key.stored_as]
        return _tagged(text_answer(value), stored_etag(value_md5(value)))
    condition = _condition()
    if request.method == "PUT":
        etag = await _content().set_metadata(record, key.stored_as, await body_text(), condition)
        return text_answer("", headers={"ETag": etag.header()})
    await _content().delete_metadata(record, key.stored_as, condition)
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments")
async def list_attachments(plural: str, public_id: str) -> Response:
    names = _attachment_names()
    numbers = sorted(await _content().attachments(await _record(plural, public_id)))
    if flag("full"):
        return json_answer({names.name(n): n for n in numbers})
    return json_answer([names.name(n) for n in numbers])


async def _attachment(plural: str, public_id: str, name: str) -> Attachment:
    number = _attachment_names().number(name)
    return await _content().attachment(await _record(plural, public_id), number)


def _attachment_etag(attachment: Attachment) -> ETag:
    return stored_etag(attachment.uncompressed_md5)


@blueprint.route(f"{_PREFIX}/attachments/<name>")
async def attachment_operations(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    return _tagged(json_answer(_ATTACHMENT_OPERATIONS), _attachment_etag(attachment))


@blueprint.route(f"{_PREFIX}/attachments/<name>", methods=["PUT"])
async def put_attachment(plural: str, public_id: str, name: str) -> Response:
    number = _attachment_names().number(name)
    if not is_user_number(number):
        return empty(403)
    record = await _record(plural, public_id)
    etag = await _content().put_attachment(record, number, await body_bytes(), _condition())
    return json_answer({}, headers={"ETag": etag.header()})


@blueprint.route(f"{_PREFIX}/attachments/<name>", methods=["DELETE"])
async def delete_attachment(plural: str, public_id: str, name: str) -> Response:
    number = _attachment_names().number(name)
    if not is_user_number(number):
        return empty(403)
    await _content().delete_attachment(await _record(plural, public_id), number, _condition())
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments/<name>/data")
async def attachment_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    data = await _content().data(attachment)
    mime = _attachment_names().mime_type(attachment.content_type)
    filename = f"{attachment.uuid}.dcm" if mime == _DICOM_MIME else attachment.uuid
    answer = Response(data, content_type=mime, headers={"Content-Disposition": f'filename="{filename}"'})
    return _tagged(answer, _attachment_etag(attachment))


@blueprint.route(f"{_PREFIX}/attachments/<name>/compressed-data")
async def attachment_compressed_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    answer = Response(await _content().stored_bytes(attachment), content_type="application/octet-stream")
    return _tagged(answer, _attachment_etag(attachment))


_PROPERTIES = 'any(size, "compressed-size", md5, "compressed-md5", "is-compressed")'


@blueprint.route(f"{_PREFIX}/attachments/<name>/<{_PROPERTIES}:what>")
async def attachment_property(plural: str, public_id: str, name: str, what: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    values = {
        "size": str(attachment.uncompressed_size),
        "compressed-size": str(attachment.compressed_size),
        "md5": attachment.uncompressed_md5,
        "compressed-md5": attachment.compressed_md5,
        "is-compressed": "1" if is_compressed(attachment) else "0",
    }
    if not values[what]:
        raise NoAnswer()  # MD5 not recorded (StoreMD5ForAttachments = false)
    return _tagged(text_answer(values[what]), _attachment_etag(attachment))


@blueprint.route(f"{_PREFIX}/attachments/<name>/info")
async def attachment_info(plural: str, public_id: str, name: str) -> Response:
    a = await _attachment(plural, public_id, name)
    info = {
        "CompressedMD5": a.compressed_md5,
        "CompressedSize": a.compressed_size,
        "ContentType": a.content_type,
        "UncompressedMD5": a.uncompressed_md5,
        "UncompressedSize": a.uncompressed_size,
        "Uuid": a.uuid,
    }
    return _tagged(json_answer(info), _attachment_etag(a))


@blueprint.route(f"{_PREFIX}/attachments/<name>/verify-md5", methods=["POST"])
async def verify_md5(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    if not await _content().verify_md5(attachment):
        raise OrthancError(ErrorCode.CORRUPTED_FILE, f"MD5 mismatch for attachment {name} of {public_id}")
    return json_answer({})


@blueprint.route(f"{_PREFIX}/attachments/<name>/<any(compress, uncompress):operation>", methods=["POST"])
async def change_compression(plural: str, public_id: str, name: str, operation: str) -> Response:
    """Store the attachment's file again, zlib-compressed or not; no change is logged."""
    number = _attachment_names().number(name)
    record = await _record(plural, public_id)
    attachment = await _content().attachment(record, number)
    await _content().set_compression(record, attachment, operation == "compress")
    return json_answer({})
