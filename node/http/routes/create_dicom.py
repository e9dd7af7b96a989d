"""Creating instances from JSON, PDFs and images, and reading an encapsulated PDF back."""

from __future__ import annotations

import logging

import trio
from quart import Blueprint, Response

from ...clock import utc_now
from ...dicom.create import Creation, Parent, build, extract_pdf, parse_request
from ...dicom.encodings import character_set_of
from ...dicom.ids import Level
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...offload import offload
from ...services.ingest import IngestResult
from ..answers import json_answer, json_body, node, request_origin

log = logging.getLogger(__name__)
blueprint = Blueprint("create_dicom", __name__)


async def _parent(public_id: str) -> Parent:
    """The parent resource and one of its instances, whose module tags the new one inherits."""
    context = node()
    level = await context.index.level_of(public_id)
    if level is None:
        raise OrthancError(ErrorCode.CREATE_DICOM_BAD_PARENT, public_id)
    if level == Level.INSTANCE:
        raise OrthancError(ErrorCode.CREATE_DICOM_PARENT_IS_INSTANCE, public_id)
    instances = await context.index.descendants(public_id, Level.INSTANCE)
    if not instances:
        raise OrthancError(ErrorCode.CREATE_DICOM_BAD_PARENT, public_id)
    return Parent(level, await context.resources.instance_dataset(instances[0]))


async def _store(data: bytes) -> IngestResult:
    """Store through the single ingest path; its errors (e.g. 15 for an empty UID) pass through."""
    result = await node().ingest.store(data, request_origin())
    if result.status not in ("Success", "AlreadyStored"):
        raise OrthancError(ErrorCode.CANNOT_STORE_INSTANCE, f"Status: {result.status}")
    return result


async def _store_series(creation: Creation) -> Response:
    """Store every instance of a series; on failure, delete the instances already stored.

    Instances, not the series: with a series as Parent, the series existed before.
    """
    stored: list[IngestResult] = []
    try:
        for data in creation.files:
            stored.append(await _store(data))
    except BaseException:
        log.warning("create-dicom: a series failed after %d stored instances, removing them", len(stored))
        with trio.CancelScope(shield=True):
            for result in stored:
                if result.status == "Success":
                    await node().resources.delete(result.ids.instance, Level.INSTANCE)
        raise
    series_id = stored[-1].ids.series
    return json_answer({"ID": series_id, "Path": f"/series/{series_id}", "Status": "Success"})


@blueprint.route("/tools/create-dicom", methods=["POST"])
async def create_dicom() -> Response:
    context = node()
    # A body that is not JSON is a bad request here (Orthanc's 8), as one that is not an object.
    request = parse_request(await json_body(ErrorCode.BAD_REQUEST), context.settings.default_private_creator)
    parent = await _parent(request.parent) if request.parent is not None else None
    encoding = context.runtime.default_encoding
    creation = await offload(build, request, parent, utc_now(), character_set_of(encoding))
    if creation.series:
        return await _store_series(creation)
    return json_answer((await _store(creation.files[0])).answer())


@blueprint.route("/instances/<public_id>/pdf")
async def instance_pdf(public_id: str) -> Response:
    context = node()
    if not await context.resources.exists(public_id, Level.INSTANCE):
        raise NoAnswer()
    dataset = await context.resources.instance_dataset(public_id)
    pdf = extract_pdf(dataset)
    if pdf is None:
        raise NoAnswer()
    return Response(pdf, content_type="application/pdf")
