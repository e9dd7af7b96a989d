"""The routes clients call most, served as plain ASGI in front of the Quart app.

Under REST ingest of small instances most of a request's time went to the framework
around it (Quart's request, response and context objects, its hooks, the dispatch)
rather than to storing the instance. The routes here answer without it, with the
bytes their Quart routes would send; every other request, and the rarer shapes of
these routes (HEAD, forms, gzip-encoded uploads), go on to the app. Served here:
POST /instances, GET /instances/{id}/file, GET /system and GET /jobs/{id}.

What applies to every route is applied by the wrappers around this one, once per
request, whichever answers it: metrics, body limits, method override and access
control (see app.py). Compression follows the app's rules (compression.py), errors
are answered as the app's error handlers answer them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Authorization

from ..context import NodeContext
from ..errors import ErrorCode, NoAnswer, OrthancError
from ..services.ingest import Origin
from .answers import json_content
from .asgi import (
    Headers,
    Message,
    Receive,
    Send,
    client_address,
    header,
    request_path,
    send_answer,
    send_empty,
    send_error,
)
from .compression import encoded, whole_body_encoding
from .multipart import boundary_of
from .routes.instances import instance_file
from .routes.jobs import job_info
from .routes.system import system_info
from .spool import receive_body
from .uploads import store_content

log = logging.getLogger(__name__)

# Content-Encoding values of an upload that the app's route inflates.
GZIP_UPLOADS = ("gzip", "x-gzip")
_INSTANCES = "/instances"
_FILE = "/file"
_JOBS = "/jobs"
_SYSTEM = "/system"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Headers


Handler = Callable[[Message, Receive, str], Awaitable[Answer]]


def request_origin(scope: Message) -> Origin:
    """Who sent a request, as recorded on the instances it stores (as the app's request_origin)."""
    authorization = Authorization.from_header(header(scope, b"authorization"))
    username = authorization.username if authorization is not None else None
    return Origin(kind="RestApi", remote_ip=client_address(scope), http_username=username or "")


def _one_segment(argument: str) -> bool:
    """Whether a path argument is what the app's routes take for one: a non-empty segment."""
    return bool(argument) and "/" not in argument


def _uploaded_as_is(scope: Message) -> bool:
    """Whether an upload's body is the content itself: not a form, not gzip-encoded."""
    if boundary_of(header(scope, b"content-type") or "") is not None:
        return False
    return (header(scope, b"content-encoding") or "").lower() not in GZIP_UPLOADS


class FastPath:
    """ASGI wrapper answering the routes above itself, passing everything else to ``app``."""

    def __init__(self, app: Any, context: NodeContext) -> None:
        self.app = app
        self._context = context
        settings = context.settings.http
        self._compression = settings.compression_enabled
        self._describe_errors = settings.describe_errors
        self._limit = settings.maximum_request_size
        self._folder = context.settings.storage.temporary_directory

    def _route(self, scope: Message) -> tuple[Handler, str] | None:
        """The handler of a request and its path argument, if it is served here. Paths match
        as the app's routes do: after a leading run of slashes, with or without a final one."""
        path = request_path(scope)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        method = scope["method"]
        if method == "POST":
            return (self._upload, "") if path == _INSTANCES and _uploaded_as_is(scope) else None
        if method != "GET":
            return None
        if path == _SYSTEM:
            return self._system, ""
        if path.startswith(_INSTANCES + "/") and path.endswith(_FILE):
            public_id = path[len(_INSTANCES) + 1 : -len(_FILE)]
            return (self._file, public_id) if _one_segment(public_id) else None
        if path.startswith(_JOBS + "/"):
            job_id = path[len(_JOBS) + 1 :]
            return (self._job, job_id) if _one_segment(job_id) else None
        return None

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        route = self._route(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        handler, argument = route
        method, path = scope["method"], request_path(scope)
        try:
            answer = await handler(scope, receive, argument)
        except OrthancError as error:
            log.info("%s %s -> %s %s", method, path, error.code.name, error.details)
            await send_error(send, error, method, path, self._describe_errors)
            return
        except NoAnswer:
            await send_empty(send, 400 if method == "POST" else 404)
            return
        except Exception:
            # What failed, and where, is for the log: its text can name files, the OS or the database.
            log.exception("internal error on %s %s", method, path)
            await send_error(send, OrthancError(ErrorCode.INTERNAL_ERROR), method, path, self._describe_errors)
            return
        body, encoding = answer.body, None
        if self._compression:
            encoding = whole_body_encoding(answer.status, body, header(scope, b"accept-encoding") or "")
            if encoding is not None:
                body = await encoded(body, encoding)
        await send_answer(send, answer.status, body, answer.headers, encoding)

    async def _upload(self, scope: Message, receive: Receive, _: str) -> Answer:
        """POST /instances with a DICOM file or a ZIP of them as its body."""
        content = await receive_body(receive, self._limit, self._folder)
        try:
            stored = await store_content(self._context, content, request_origin(scope))
        finally:
            content.close()
        return _json(scope, stored)

    async def _file(self, scope: Message, _: Receive, public_id: str) -> Answer:
        found = await instance_file(self._context, public_id, header(scope, b"accept") or "")
        headers = [(b"content-type", found.content_type.encode())]
        if found.filename is not None:
            headers.insert(0, (b"content-disposition", f'filename="{found.filename}"'.encode()))
        return Answer(200, found.body, headers)

    async def _system(self, scope: Message, _: Receive, __: str) -> Answer:
        return _json(scope, system_info(self._context))

    async def _job(self, scope: Message, _: Receive, job_id: str) -> Answer:
        """GET /jobs/{id}, which clients poll while a job runs."""
        return _json(scope, job_info(self._context.jobs, job_id))


def _json(scope: Message, data: Any) -> Answer:
    """A 200 holding ``data`` in JSON, or in XML for clients that ask for it."""
    text, content_type = json_content(data, header(scope, b"accept") or "")
    return Answer(200, text.encode(), [(b"content-type", content_type.encode())])
