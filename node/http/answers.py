"""Shaping answers and reading requests the way Orthanc does, in one place."""

from __future__ import annotations

import json
import logging
import math
from json.encoder import encode_basestring_ascii
from typing import Any

from quart import Response, current_app, request

from ..body_fields import json_object
from ..context import NodeContext
from ..dicom.json_view import TagFormat
from ..errors import ErrorCode, OrthancError, description
from ..nesting import JsonTooDeep, load_json
from ..services.ingest import Origin
from .xml import to_xml

log = logging.getLogger(__name__)

_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict", 413: "Payload Too Large",
    415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity",
    500: "Internal Server Error", 503: "Service Unavailable", 507: "Insufficient Storage",
}  # fmt: skip

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml; charset=utf-8"


def node() -> NodeContext:
    return current_app.config["NODE_CONTEXT"]


def request_origin() -> Origin:
    """Who sent the current request, as recorded on the instances it stores."""
    auth = request.authorization
    username = auth.username if auth is not None else None
    return Origin(kind="RestApi", remote_ip=request.remote_addr or "", http_username=username or "")


def wants_xml(accept: str) -> bool:
    """Orthanc 1.10.1 answers XML only when the Accept header, up to its first `;`, is `application/xml`."""
    return accept.split(";", 1)[0] == "application/xml"


_INDENT = "   "  # Orthanc pretty-prints its answers with three spaces
_CONSTANTS: dict[Any, str] = {None: "null", True: "true", False: "false"}


class _NotPlain(Exception):
    """A value :func:`pretty_json` leaves to :mod:`json` (non-string keys, other types)."""


def _write(value: Any, out: list[str], newline: str) -> None:
    if isinstance(value, str):
        out.append(encode_basestring_ascii(value))
    elif value is None or value is True or value is False:
        out.append(_CONSTANTS[value])
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + _INDENT
        separator = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotPlain
            out.append(separator)
            out.append(encode_basestring_ascii(key))
            out.append(": ")
            _write(item, out, inner)
            separator = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + _INDENT
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _write(item, out, inner)
            separator = "," + inner
        out.append(newline + "]")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float) and math.isfinite(value):
        out.append(float.__repr__(value))
    else:
        raise _NotPlain


def pretty_json(data: Any) -> str:
    """``json.dumps(data, indent=3)``, character for character, a few times faster.

    The json module encodes in C only without indentation; its indenting encoder is
    pure Python and was a visible part of every answer, large ones (/tags, expanded
    lists) most. Anything but strings, ints, booleans, None, lists and dicts with
    string keys (NaN, say) is left to the json module.
    """
    out: list[str] = []
    try:
        _write(data, out, "\n")
    except _NotPlain:
        return json.dumps(data, indent=3)
    return "".join(out)


def json_content(data: Any, accept: str) -> tuple[str, str]:
    """(text, content type) of an answer holding ``data``: JSON, or XML for clients that ask for it."""
    if wants_xml(accept):
        return to_xml(data), XML_TYPE
    return pretty_json(data), JSON_TYPE


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text, content_type = json_content(data, request.headers.get("Accept", ""))
    return Response(text, status=status, headers=headers, content_type=content_type)


def text_answer(
    text: str | bytes, content_type: str = "text/plain", status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(text, status=status, headers=headers, content_type=content_type)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    """An answer without a body, and so without a Content-Type (as Orthanc sends them)."""
    response = Response(b"", status=status, headers=headers)
    del response.headers["Content-Type"]
    return response


def error_body(error: OrthancError, method: str, uri: str) -> dict[str, Any]:
    """Orthanc's JSON body of an error: code, HTTP status, message, details, method and URI."""
    status = error.http_status
    body: dict[str, Any] = {
        "HttpError": _REASONS.get(status, "Internal Server Error"),
        "HttpStatus": status,
        "Message": description(error.code),
        "Method": method,
        "OrthancError": description(error.code),
        "OrthancStatus": int(error.code),
        "Uri": uri,
    }
    if error.details:
        body["Details"] = error.details
    return body


def error_answer(error: OrthancError) -> Response:
    if not node().settings.http.describe_errors:
        return empty(error.http_status)
    body = error_body(error, request.method, request.path)
    return Response(pretty_json(body), status=error.http_status, content_type=JSON_TYPE)


def flag(name: str) -> bool:
    """URL flags are true when present, whatever their value (Orthanc 1.10.1)."""
    return name in request.args


def tag_format(default: TagFormat = TagFormat.SIMPLIFY) -> TagFormat:
    """`?simplify` wins over `?short`, which wins over `?full` (checked on Orthanc 1.10.1)."""
    if flag("simplify"):
        return TagFormat.SIMPLIFY
    if flag("short"):
        return TagFormat.SHORT
    if flag("full"):
        return TagFormat.FULL
    return default


async def body_bytes() -> bytes:
    """The request body as received (Quart types ``get_data`` as ``str | bytes``: this says which)."""
    return await request.get_data(cache=True, as_text=False, parse_form_data=False)


async def body_text() -> str:
    """The request body decoded as text."""
    return await request.get_data(cache=True, as_text=True, parse_form_data=False)


# The words Orthanc reads as a boolean in a request body (exactly these, spaces around allowed).
_BOOLEAN_WORDS = {"0": False, "false": False, "1": True, "true": True}


async def boolean_body() -> bool:
    """The request body read as a boolean, or Orthanc's error 15."""
    value = _BOOLEAN_WORDS.get((await body_text()).strip())
    if value is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Boolean value expected")
    return value


def parse_json_body(data: bytes, refusal: ErrorCode = ErrorCode.BAD_FILE_FORMAT) -> Any:
    """A request body parsed as JSON (None when blank), or the route's error (Orthanc's 15 for
    most; also for a body nested too deeply to be handled: see :mod:`node.nesting`)."""
    try:
        return load_json(data) if data.strip() else None
    except JsonTooDeep as exc:
        raise OrthancError(refusal, f"The body of the request is not accepted: {exc.msg}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OrthancError(refusal, "The body of the request is not valid JSON") from exc


async def json_body(refusal: ErrorCode = ErrorCode.BAD_FILE_FORMAT) -> Any:
    """The request body parsed as JSON: see :func:`parse_json_body`."""
    return parse_json_body(await body_bytes(), refusal)


async def json_object_body() -> dict[str, Any]:
    return json_object(await json_body(), ErrorCode.BAD_FILE_FORMAT, "The body must be a JSON object")
