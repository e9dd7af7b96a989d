"""The body of ``POST /modalities/{id}/store`` and ``POST /peers/{id}/store``, in every form Orthanc takes.

A bare Orthanc ID as plain text, a JSON string, a JSON array of IDs, or a JSON object
with ``Resources`` and the options of the transfer. IDs may name resources of any
level; each must look like an Orthanc ID (400, error 15) and exist (404, error 17).
The common job options (Synchronous, Priority...) are read by
:func:`~node.jobs.submit.submit_options` from the same body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydicom.uid import UID

from ..body_fields import boolean, integer, string
from ..errors import ErrorCode, OrthancError
from ..nesting import load_json

_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}")
_NOT_JSON = "Must provide a JSON value"
_NOT_A_LIST = "Must provide a JSON object, or a JSON array of strings"
_NOT_STRINGS = "Resources to be exported must be specified as a JSON array of strings"


@dataclass(frozen=True)
class StoreRequest:
    resources: list[str]  # as named in the body: the job's ParentResources
    options: Any  # the body as JSON when it was an object (job options), else None
    local_aet: str | None = None
    move_originator_aet: str | None = None
    move_originator_id: int = 0  # 0: not a sub-operation of a C-MOVE
    timeout: int | None = None  # seconds, for every wait of the transfer
    compress: bool = False  # peers: gzip each file on the wire
    transcode: str | None = None  # peers: the transfer syntax asked for


def _is_orthanc_id(text: str) -> bool:
    return _ORTHANC_ID.fullmatch(text) is not None


def _checked_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _NOT_STRINGS)
    for item in value:
        if not _is_orthanc_id(item):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"This string is not a valid Orthanc identifier: {item}")
    return list(value)


def _optional_string(body: dict[str, Any], name: str) -> str | None:
    """Orthanc answers a field of the wrong type here with error 5 and no details."""
    return None if name not in body else string(body[name], ErrorCode.BAD_PARAMETER_TYPE)


def _timeout(body: dict[str, Any]) -> int | None:
    if "Timeout" not in body:
        return None
    seconds = integer(body["Timeout"], ErrorCode.BAD_FILE_FORMAT, "Integer value expected in field: Timeout")
    if seconds < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Unsigned integer value expected in field: Timeout")
    return seconds


def _transcode(body: dict[str, Any]) -> str | None:
    if "Transcode" not in body:
        return None
    syntax = string(body["Transcode"], ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Transcode")
    if not UID(syntax).is_transfer_syntax:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Unknown transfer syntax UID: {syntax}")
    return syntax


def _from_object(body: dict[str, Any], *, peer: bool) -> StoreRequest:
    if "Resources" not in body:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Missing field in JSON: "Resources"')
    if not isinstance(body["Resources"], list):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'JSON field "Resources" must contain an array')
    resources = _checked_ids(body["Resources"])
    originator_id = body.get("MoveOriginatorID", 0)
    originator_id = integer(originator_id, ErrorCode.BAD_PARAMETER_TYPE)
    if body.get("StorageCommitment", False) is not False:
        # Reporting a transfer as committed without asking would be a lie: refused until it exists.
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "Storage commitment is not supported")
    compress = False
    if peer and "Compress" in body:
        compress = boolean(body["Compress"], ErrorCode.BAD_FILE_FORMAT, "Boolean value expected in field: Compress")
    return StoreRequest(
        resources=resources,
        options=body,
        local_aet=_optional_string(body, "LocalAet"),
        move_originator_aet=_optional_string(body, "MoveOriginatorAet"),
        move_originator_id=originator_id,
        timeout=_timeout(body),
        compress=compress,
        transcode=_transcode(body) if peer else None,
    )


def parse_store_request(raw: bytes, *, peer: bool) -> StoreRequest:
    """The request in a store body; Orthanc's errors for a malformed one. ``peer``: Compress and
    Transcode are read too."""
    text = raw.decode("utf-8", errors="replace").strip()
    if _is_orthanc_id(text):
        return StoreRequest(resources=[text], options=None)
    try:
        body = load_json(text)
    except json.JSONDecodeError as error:  # JsonTooDeep too
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _NOT_JSON) from error
    if isinstance(body, str):
        return StoreRequest(resources=_checked_ids([body]), options=None)
    if isinstance(body, list):
        return StoreRequest(resources=_checked_ids(body), options=None)
    if isinstance(body, dict):
        return _from_object(body, peer=peer)
    raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _NOT_A_LIST)
