"""/modalities: the remote DICOM modalities, listed and changed through REST, and checked with a C-ECHO
(their C-STORE, query and retrieve routes are in :mod:`.transfers` and :mod:`.queries`)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from ...body_fields import boolean
from ...errors import ErrorCode, OrthancError
from ...net.echo_scu import echo
from ...remotes.json_fields import unsigned_field
from ..answers import empty, json_body, node, text_answer
from .remote_registry import add_registry_routes

blueprint = Blueprint("modalities", __name__)

#: What GET /modalities/{id} lists.
_SUB_ROUTES = (
    "configuration",
    "echo",
    "find",
    "find-instance",
    "find-patient",
    "find-series",
    "find-study",
    "find-worklist",
    "move",
    "query",
    "storage-commitment",
    "store",
    "store-straight",
)
_ECHOED = "{}"  # the answer to a successful C-ECHO


def _unparsable() -> OrthancError:
    """A modality's body that is empty or not JSON: Orthanc's error 15, without details."""
    return OrthancError(ErrorCode.BAD_FILE_FORMAT)


add_registry_routes(blueprint, "/modalities", lambda: node().remotes.modalities, _SUB_ROUTES, _unparsable)


async def _options_body() -> dict[str, Any]:
    """The JSON body of a request to a modality; empty, or any JSON but an object, means no options."""
    try:
        body = await json_body()
    except OrthancError as error:
        raise OrthancError(error.code, "Cannot parse the JSON body") from error
    return body if isinstance(body, dict) else {}


@blueprint.route("/modalities/<name>/echo", methods=["POST"])
async def echo_modality(name: str) -> Response:
    """C-ECHO, then (``CheckFind``, by default DicomEchoChecksFind) a C-FIND: 200 ``{}`` when both
    succeed, a bare 500 when the remote answers the C-ECHO with a failure, error 9 when no
    association is made."""
    body = await _options_body()
    context = node()
    modality = context.remotes.modalities.get(name)

    def check_find() -> bool:
        if "CheckFind" not in body:
            return context.settings.remotes.echo_checks_find
        return boolean(body["CheckFind"], ErrorCode.BAD_FILE_FORMAT, "Boolean value expected in field: CheckFind")

    dicom = context.settings.dicom
    answered = await echo(
        modality.host,
        modality.port,
        calling_aet=modality.calling_aet(None, dicom.aet),
        called_aet=modality.aet,
        timeout=modality.scu_timeout(unsigned_field(body, "Timeout") or None, dicom.scu_timeout),
        check_find=check_find,
    )
    return text_answer(_ECHOED, "application/json") if answered else empty(500)
