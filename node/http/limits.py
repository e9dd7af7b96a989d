"""Refuse bodies over MaximumRequestSize before the app reads them.

A client such as httpx sends its whole body before it reads the answer; if the
server answers early and stops reading, both sides wait on full TCP buffers.
So the excess body is read and discarded (up to a bound) and only then is the
413 sent, which every client can read.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ErrorCode, OrthancError
from .answers import JSON_TYPE, error_body, pretty_json

log = logging.getLogger(__name__)

# Past this many discarded bytes the connection is simply closed.
DRAIN_LIMIT = 256 * 1024 * 1024


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    def __init__(self, app: Any, limit_bytes: int, describe_errors: bool) -> None:
        self.app = app
        self.limit = limit_bytes
        self.describe_errors = describe_errors

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        length = _content_length(scope) if scope.get("type") == "http" else None
        if length is None or length <= self.limit:
            await self.app(scope, receive, send)
            return
        limit_mb = self.limit // (1024 * 1024)
        log.warning("%s %s: body of %d bytes over MaximumRequestSize", scope["method"], scope["path"], length)
        drained = 0
        while drained <= DRAIN_LIMIT:
            message = await receive()
            drained += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        error = OrthancError(
            ErrorCode.BAD_REQUEST, f"The request body exceeds MaximumRequestSize ({limit_mb} MB)", status=413
        )
        body = b""
        headers = [(b"content-length", b"0")]
        if self.describe_errors:
            body = pretty_json(error_body(error, scope["method"], scope["path"])).encode()
            headers = [(b"content-type", JSON_TYPE.encode()), (b"content-length", str(len(body)).encode())]
        if drained > DRAIN_LIMIT:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
