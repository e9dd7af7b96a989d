"""Metadata and attachments of a resource: /{level}/{id}/metadata and /attachments.

As in Orthanc, a name is resolved first (error 7 when unknown), then a write to a
built-in entry is refused with an empty 403, and only then is the resource looked up.
"""

from __future__ import annotations

from quart import Blueprint, Response, request

from ...dicom.ids import Level
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...services.metadata import MetadataNames, attachment_name, attachment_number, is_user_number
from ...services.user_content import Attachment, ResourceRecord, UserContent, is_compressed, is_dicom
from ..answers import body_bytes, body_text, empty, flag, json_answer, node, text_answer

blueprint = Blueprint("metadata", __name__)

_PREFIX = "/<any(patients, studies, series, instances):plural>/<public_id>"
# What Orthanc lists under /attachments/{name}.
_ATTACHMENT_OPERATIONS = [
    "compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info",
    "is-compressed", "md5", "size", "uncompress", "verify-md5", "uuid",
]  # fmt: skip


def _names() -> MetadataNames:
    return MetadataNames(node().settings.user_metadata)


def _content() -> UserContent:
    context = node()
    return UserContent(context.index, context.files, context.resources, store_md5=context.settings.storage.store_md5)


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
        return text_answer(record.metadata[key.stored_as])
    if request.method == "PUT":
        await _content().set_metadata(record, key.stored_as, await body_text())
    else:
        await _content().delete_metadata(record, key.stored_as)
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments")
async def list_attachments(plural: str, public_id: str) -> Response:
    numbers = sorted(await _content().attachments(await _record(plural, public_id)))
    if flag("full"):
        return json_answer({attachment_name(n): n for n in numbers})
    return json_answer([attachment_name(n) for n in numbers])


async def _attachment(plural: str, public_id: str, name: str) -> Attachment:
    number = attachment_number(name)
    return await _content().attachment(await _record(plural, public_id), number)


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
    await _content().put_attachment(record, number, await body_bytes())
    return json_answer({})


@blueprint.route(f"{_PREFIX}/attachments/<name>", methods=["DELETE"])
async def delete_attachment(plural: str, public_id: str, name: str) -> Response:
    number = attachment_number(name)
    if not is_user_number(number):
        return empty(403)
    await _content().delete_attachment(await _record(plural, public_id), number)
    return text_answer("")


@blueprint.route(f"{_PREFIX}/attachments/<name>/data")
async def attachment_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    data = await _content().data(attachment)
    return Response(data, content_type="application/dicom" if is_dicom(attachment) else "application/octet-stream")


@blueprint.route(f"{_PREFIX}/attachments/<name>/compressed-data")
async def attachment_compressed_data(plural: str, public_id: str, name: str) -> Response:
    attachment = await _attachment(plural, public_id, name)
    return Response(await _content().stored_bytes(attachment), content_type="application/octet-stream")


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
    if not await _content().verify_md5(attachment):
        raise OrthancError(ErrorCode.CORRUPTED_FILE, f"MD5 mismatch for attachment {name} of {public_id}")
    return json_answer({})
