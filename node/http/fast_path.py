"""The routes clients call most, served as plain ASGI in front of the Quart app.

Under REST ingest of small instances most of a request's time went to the framework
around it (Quart's request, response and context objects, its hooks, the dispatch)
rather than to storing the instance. The routes here answer without it, with the
bytes their Quart routes would send; every other request, and the rarer shapes of
these routes (HEAD, forms, gzip-encoded uploads), go on to the app. Served here:
POST /instances, GET /instances/{id}/file, GET /instances/{id}/tags (plain: no query
string, JSON), GET /system and GET /jobs/{id}.

What applies to every route is applied by the wrappers around this one, once per
request, whichever answers it: metrics, body limits, method override and access
control (see app.py). Compression follows the app's rules (compression.py), errors
are answered as the app's error handlers answer them.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import Authorization

from ..context import NodeContext
from ..dicom.json_view import TagFormat, dataset_to_json
from ..errors import ErrorCode, NoAnswer, OrthancError
from ..services.ingest import Origin
from .answers import JSON_TYPE, json_content, pretty_json, wants_xml
from .asgi import (
    Headers,
    Message,
    Receive,
    Send,
    client_address,
    content_length,
    header,
    request_path,
    send_answer,
    send_empty,
    send_error,
)
from .compression import accepted_encoding, encoded, whole_body_encoding
from .fast_jobs import FastRewrites
from .http1 import ZERO_COPY_SEND
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
_TAGS = "/tags"
# Total bytes of the /tags answers kept (least recently used out first).
TAGS_CACHE_BYTES = 32 * 1024 * 1024
_JOBS = "/jobs"
_SYSTEM = "/system"


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: Headers
    opened: tuple[int, int] | None = None  # instead of the body: a file's descriptor and size, sent and closed


Handler = Callable[[Message, Receive, str], Awaitable[Answer]]


def request_origin(scope: Message) -> Origin:
    """Who sent a request, as recorded on the instances it stores (as the app's request_origin)."""
    authorization = Authorization.from_header(header(scope, b"authorization"))
    username = authorization.username if authorization is not None else None
    return Origin(kind="RestApi", remote_ip=client_address(scope), http_username=username or "")


def _one_segment(argument: str) -> bool:
    """Whether a path argument is what the app's routes take for one: a non-empty segment."""
    return bool(argument) and "/" not in argument


def _plain_json(scope: Message) -> bool:
    """Whether a read has no query string and wants JSON (other shapes go on to the app)."""
    return not scope.get("query_string") and not wants_xml(header(scope, b"accept") or "")


def _uploaded_as_is(scope: Message) -> bool:
    """Whether an upload's body is the content itself: not a form, not gzip-encoded."""
    if boundary_of(header(scope, b"content-type") or "") is not None:
        return False
    return (header(scope, b"content-encoding") or "").lower() not in GZIP_UPLOADS


class TagsAnswers:
    """Instance ID -> the JSON text of its GET /tags answer, with the attachment it was made from.

    The caller looks the attachment up in the index on every request, so a deleted instance is
    unknown there and an overwritten one (new attachment) misses here and is made again."""

    def __init__(self, max_bytes: int = TAGS_CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._size = 0

    def get(self, public_id: str, attachment: str) -> bytes | None:
        entry = self._entries.get(public_id)
        if entry is None or entry[0] != attachment:
            return None
        self._entries.move_to_end(public_id)
        return entry[1]

    def keep(self, public_id: str, attachment: str, body: bytes) -> None:
        self._drop(public_id)
        if len(body) > self._max_bytes:
            return
        self._entries[public_id] = (attachment, body)
        self._size += len(body)
        while self._size > self._max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, public_id: str) -> None:
        entry = self._entries.pop(public_id, None)
        if entry is not None:
            self._size -= len(entry[1])


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
        self._tags = TagsAnswers()
        self._rewrites = FastRewrites(context, _json, request_origin)  # POST /{level}/{id}/{modify,anonymize}

    def _route(self, scope: Message) -> tuple[Handler, str] | None:
        """The handler of a request and its path argument, if it is served here. Paths match
        as the app's routes do: after a leading run of slashes, with or without a final one."""
        path = request_path(scope)
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        method = scope["method"]
        if method == "POST":
            return (self._upload, "") if path == _INSTANCES and _uploaded_as_is(scope) else self._rewrites.route(path)
        if method != "GET":
            return None
        if path == _SYSTEM:
            return self._system, ""
        if path.startswith(_INSTANCES + "/") and path.endswith(_FILE):
            public_id = path[len(_INSTANCES) + 1 : -len(_FILE)]
            return (self._file, public_id) if _one_segment(public_id) else None
        if path.startswith(_INSTANCES + "/") and path.endswith(_TAGS) and _plain_json(scope):
            public_id = path[len(_INSTANCES) + 1 : -len(_TAGS)]
            return (self._tags_of, public_id) if _one_segment(public_id) else None
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
        if answer.opened is not None:
            await _send_file(send, answer.status, answer.headers, *answer.opened)
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
        """The file, sent from the disk by the kernel when the server can and it goes as it is stored."""
        whole = self._compression and accepted_encoding(header(scope, b"accept-encoding") or "") is not None
        zero_copy = ZERO_COPY_SEND in scope.get("extensions", {}) and not whole
        found = await instance_file(self._context, public_id, header(scope, b"accept") or "", open_file=zero_copy)
        headers = [(b"content-type", found.content_type.encode())]
        if found.filename is not None:
            headers.insert(0, (b"content-disposition", f'filename="{found.filename}"'.encode()))
        return Answer(200, found.body, headers, found.opened)

    async def _tags_of(self, _: Message, __: Receive, public_id: str) -> Answer:
        """GET /instances/{id}/tags in full format, made once per stored file of the instance."""
        resources = self._context.resources
        attachment = await resources.instance_attachment(public_id)
        body = self._tags.get(public_id, attachment.uuid)
        if body is None:
            data = await resources.read_parsed(public_id, attachment, dataset_to_json, TagFormat.FULL, frozenset())
            body = pretty_json(data).encode()
            self._tags.keep(public_id, attachment.uuid, body)
        return Answer(200, body, [(b"content-type", JSON_TYPE.encode())])

    async def _system(self, scope: Message, _: Receive, __: str) -> Answer:
        return _json(scope, system_info(self._context))

    async def _job(self, scope: Message, _: Receive, job_id: str) -> Answer:
        """GET /jobs/{id}, which clients poll while a job runs."""
        return _json(scope, await job_info(self._context.jobs, job_id))


async def _send_file(send: Send, status: int, headers: Headers, fd: int, size: int) -> None:
    """An answer whose body is the open file ``fd`` (closed here), by ASGI's zero-copy send."""
    try:
        await send({"type": "http.response.start", "status": status, "headers": [*headers, content_length(size)]})
        await send({"type": ZERO_COPY_SEND, "file": fd, "count": size})
    finally:
        os.close(fd)


def _json(scope: Message, data: Any) -> Answer:
    """A 200 holding ``data`` in JSON, or in XML for clients that ask for it."""
    text, content_type = json_content(data, header(scope, b"accept") or "")
    return Answer(200, text.encode(), [(b"content-type", content_type.encode())])
