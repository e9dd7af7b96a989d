"""HTTP/1.1 on one connection: requests read, and the ASGI app run, in the connection's own task.

An HTTP/1.1 connection carries one request at a time, so serving it needs no task but its
own: here the request's head is parsed, the app called and its answer written in that
task, where a general server (hypercorn over h11) runs each request in a task of its own
and passes every part of a request and of its answer as an event between tasks and
layers. For a small request that traffic cost more than the request's own work; here a
request without a body and its one-part answer cost one read and one write.

What a client sees is HTTP/1.1 as RFC 9112 has it, with these choices:

- a request's head (its line and headers) is at most :data:`MAX_HEAD` bytes (431 past it)
  and must arrive within the keep-alive time of the connection's last answer, or of its
  opening; anything malformed gets 400 and the connection closes;
- a body is framed by Content-Length or by chunked transfer coding; a request with both,
  or with another coding, is refused (the ambiguity request smuggling lives on);
- ``Expect: 100-continue`` is answered when the app first asks for the body, so an early
  answer (401, 413) spares the client the upload;
- a body the app sends from an open file (ASGI's zero-copy send) is copied to the socket by
  the kernel;
- an answer without a Content-Length is sent chunked (to an HTTP/1.0 client: until the
  connection closes); HEAD and 204/304 answers have no body;
- HTTP/1.0 clients, ``Connection: close`` on either side, an answer the app left
  unfinished, and a body left unread end the connection after the answer; an app that
  fails before answering gets 500;
- once the app has read the whole body, its next read waits for the client to leave
  (``http.disconnect``, which makes Quart cancel the request's handler), keeping what a
  client pipelines meanwhile for the next request;
- HTTP/2 is not served (Orthanc serves none): its preface closes the connection.

The time limits a client must keep to while it sends a body or reads an answer are the
stream's (:class:`~.connection.GuardedStream`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from email.utils import formatdate
from http import HTTPStatus
from time import time
from typing import Any
from urllib.parse import unquote

import trio

from .asgi import App, Message
from .connection import RECEIVE_SIZE, GuardedStream

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # bytes of a request line and its headers, or of a chunked body's trailers
MAX_CHUNK_LINE = 1024  # bytes of a chunk's size line, its extensions included
MAX_LENGTH_DIGITS = 18  # of a Content-Length: far above any size limit, and within 64 bits
# Bytes a client may pipeline while the app works on its request; past them the connection is
# not read until the answer is sent (the client waits, as it would for any server).
MAX_PIPELINED = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_HEADER_NAME = re.compile(_TOKEN)
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_HTTP2_PREFACE = b"PRI * HTTP/2.0"
_NO_BODY_STATUSES = frozenset({204, 304})
_CHUNKED = b"chunked"
_ASGI = {"spec_version": "2.1", "version": "3.0"}
# ASGI's extension (and message type) for a body sent from an open file, as the kernel copies it.
ZERO_COPY_SEND = "http.response.zerocopysend"
_DISCONNECT: Message = {"type": "http.disconnect"}


class _BadRequest(Exception):
    """The client broke the protocol: answered with ``status``, then the connection closes."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Gone(Exception):
    """The connection ended (the client left, or the server closes it)."""


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


class _Date:
    """The Date header of answers, made again at most once a second."""

    def __init__(self) -> None:
        self._second = 0
        self._line = b""

    def line(self) -> bytes:
        now = int(time())
        if now != self._second:
            self._second = now
            self._line = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


_DATE = _Date()


class _Request:
    """One request's head, as the parser found it."""

    __slots__ = ("chunked", "close", "expects_continue", "headers", "length", "method", "target", "version")

    def __init__(self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.length = 0  # body bytes announced by Content-Length (0 when chunked)
        self.chunked = False
        self.close = version == "1.0"  # an HTTP/1.0 connection serves one request
        self.expects_continue = False


class _Exchange:
    """Where one request and its answer stand."""

    __slots__ = (
        "answer_chunked", "answer_left", "body_done", "body_left", "body_read", "chunk_end_due", "close_after",
        "continue_sent", "finished", "head", "malformed", "no_body", "request", "request_ended", "started",
    )  # fmt: skip

    def __init__(self, request: _Request) -> None:
        self.request = request
        # The request's body:
        self.body_left = request.length  # bytes of a Content-Length body, or of the chunk under way
        self.body_done = not request.chunked and not request.length  # its last byte was read
        self.request_ended = False  # the app was told so
        self.chunk_end_due = False  # the line end after a chunk's data is still to read
        self.malformed = False  # its chunked body broke the protocol: answered 400 for the app
        self.continue_sent = False
        self.body_read = trio.CancelScope()  # the read of the body under way
        # The answer:
        self.head = b""  # its head but for Connection and the blank line, held until its body's first part
        self.started = False
        self.finished = False
        self.close_after = request.close  # the connection closes once it is sent
        self.answer_chunked = False
        self.answer_left: int | None = None  # bytes its Content-Length still announces
        self.no_body = False  # HEAD, or a status without a body


def _parse_head(head: bytes) -> _Request:
    """The request whose line and headers are ``head`` (without its blank line); _BadRequest
    when it breaks the protocol or frames its body ambiguously."""
    lines = _LINE_END.split(head)
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise _BadRequest(400, "malformed request line")
    method, target, major, minor = match.groups()
    if (major, minor) not in ((b"1", b"1"), (b"1", b"0")):
        raise _BadRequest(505, "HTTP version not supported")
    version = "1.1" if minor == b"1" else "1.0"
    headers: list[tuple[bytes, bytes]] = []
    request = _Request(method.decode("ascii"), target, version, headers)
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    host = False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            raise _BadRequest(400, "malformed header")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value) is not None:
            raise _BadRequest(400, "malformed header value")
        name = name.lower()
        headers.append((name, value))
        if name == b"content-length":
            lengths.update(part.strip(b" \t") for part in value.split(b","))
        elif name == b"transfer-encoding":
            codings.extend(part.strip(b" \t").lower() for part in value.split(b","))
        elif name == b"connection":
            if b"close" in (part.strip(b" \t").lower() for part in value.split(b",")):
                request.close = True
        elif name == b"expect":
            request.expects_continue = value.lower() == b"100-continue"
        elif name == b"host":
            host = True
    if version == "1.1" and not host:
        raise _BadRequest(400, "no Host header")
    if codings:
        if codings != [_CHUNKED] or lengths:
            raise _BadRequest(400 if lengths else 501, "unsupported or ambiguous body framing")
        request.chunked = True
    elif lengths:
        length = lengths.pop()
        if lengths or not length.isdigit() or len(length) > MAX_LENGTH_DIGITS:
            raise _BadRequest(400, "bad Content-Length")
        request.length = int(length)
    return request


async def _take(lock: trio.StrictFIFOLock) -> None:
    """``lock``, without a pass of the scheduler when it is free (the I/O that follows yields
    if it must wait)."""
    try:
        lock.acquire_nowait()
    except trio.WouldBlock:
        await lock.acquire()


class Http1Connection:
    """Serves the requests of one connection until it ends; see the module."""

    def __init__(
        self,
        app: App,
        stream: GuardedStream,
        *,
        state: MutableMapping[str, Any],
        keep_alive: float,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
    ) -> None:
        self._app = app
        self._stream = stream
        self._state = state
        self._keep_alive = keep_alive
        self._client = client
        self._server = server
        self._buffer = bytearray()  # read from the client, not yet used
        self._eof = False  # the client sends no more
        self._read_lock = trio.StrictFIFOLock()  # Quart and the body's drain may read at once
        self._write_lock = trio.StrictFIFOLock()  # the app's answer and a 100 Continue
        self._x = _Exchange(_Request("GET", b"/", "1.1", []))  # the request served (none yet)

    async def serve(self) -> None:
        """Requests, one after the other, until one of them or the client ends the connection."""
        try:
            while await self._serve_next():
                # A client that sends its next request as soon as it has its answer would
                # otherwise find it there at every read: its requests would be served one after
                # the other without letting any other task of the node run.
                await trio.lowlevel.checkpoint()
            with trio.CancelScope(shield=True):
                await self._stream.send_eof()
        except (_Gone, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def _serve_next(self) -> bool:
        """Read and serve the next request; whether the connection may serve another."""
        head = None
        try:
            with trio.move_on_after(self._keep_alive):
                head = await self._read_head()
            if head is None or head.startswith(_HTTP2_PREFACE):
                return False
            request = _parse_head(head)
        except _BadRequest as error:
            log.info("HTTP request refused (%d): %s", error.status, error)
            await self._answer_alone(error.status)
            return False
        self._x = x = _Exchange(request)
        try:
            await self._app(self._scope(request), self._receive, self._send)
        except Exception:
            log.exception("HTTP %s %r failed", request.method, request.target)
            x.close_after = True
        if not x.started:
            await self._answer_alone(500)
            return False
        return x.finished and x.body_done and not x.close_after

    def _scope(self, request: _Request) -> Message:
        path, _, query = request.target.partition(b"?")
        return {
            "type": "http",
            "http_version": request.version,
            "asgi": _ASGI,
            "method": request.method.upper(),
            "scheme": "http",
            "path": unquote(path.decode("ascii")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": request.headers,
            "client": self._client,
            "server": self._server,
            "state": dict(self._state),
            "extensions": {ZERO_COPY_SEND: {}},
        }

    # -- reading ------------------------------------------------------------------

    async def _fill(self, most: int = RECEIVE_SIZE) -> bytes:
        """The client's next bytes (at most ``most``); b"" once it sends no more."""
        if self._eof:
            return b""
        try:
            data = await self._stream.receive_some(most)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self._eof = True
        return bytes(data)

    async def _read_head(self) -> bytes | None:
        """The next request's line and headers; None when the client leaves between requests."""
        while True:
            if self._buffer.startswith((b"\r", b"\n")):  # blank lines before a request are allowed
                del self._buffer[: len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))]
            found = _HEAD_END.search(self._buffer, 0, MAX_HEAD + 4)
            if found is not None:
                head = bytes(self._buffer[: found.start()])
                del self._buffer[: found.end()]
                return head
            if len(self._buffer) > MAX_HEAD:
                raise _BadRequest(431, "request head too large")
            data = await self._fill()
            if not data:
                return None
            self._buffer += data

    async def _read_line(self, limit: int) -> bytes:
        """The next line of a chunked body (without its end), at most ``limit`` bytes."""
        while (end := self._buffer.find(b"\n", 0, limit + 2)) < 0:
            if len(self._buffer) >= limit + 2:
                raise _BadRequest(400, "chunked body line too long")
            data = await self._fill()
            if not data:
                raise _Gone
            self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    async def _read_data(self) -> bytes:
        """Up to ``_body_left`` bytes of the body's data, those read ahead first."""
        if self._buffer:
            data = bytes(self._buffer[: self._x.body_left])
            del self._buffer[: len(data)]
        else:
            data = await self._fill(min(self._x.body_left, RECEIVE_SIZE))
            if not data:
                raise _Gone
        self._x.body_left -= len(data)
        return data

    async def _read_chunked(self) -> bytes:
        """The next part of a chunked body: data, or b"" once its last chunk and trailers are read."""
        x = self._x
        while not x.body_left:
            if x.chunk_end_due:
                if await self._read_line(0):
                    raise _BadRequest(400, "chunk longer than its size")
                x.chunk_end_due = False
            size = (await self._read_line(MAX_CHUNK_LINE)).partition(b";")[0].strip(b" \t")
            if _HEX.fullmatch(size) is None:
                raise _BadRequest(400, "bad chunk size")
            if not (length := int(size, 16)):
                trailers = 0
                while line := await self._read_line(max(0, MAX_HEAD - trailers)):
                    trailers += len(line)
                x.body_done = True
                return b""
            x.body_left = length
        data = await self._read_data()
        x.chunk_end_due = not x.body_left
        return data

    async def _receive(self) -> Message:
        """ASGI's receive: the body's next part, then (its end told) the client's leaving."""
        x = self._x
        await _take(self._read_lock)
        try:
            return await self._receive_next(x)
        finally:
            self._read_lock.release()

    async def _receive_next(self, x: _Exchange) -> Message:
        """:meth:`_receive`, the reading its own."""
        if x.request_ended:
            return await self._disconnected()
        if x.request.expects_continue and not (x.continue_sent or x.body_done):
            if x.started:  # answered first: the client sends no body, and the connection closes
                return self._gone()
            x.continue_sent = True
            await self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if x.finished and x.close_after:
            return self._gone()  # the answer ended the connection: the rest of the body is not read
        try:
            with trio.CancelScope() as x.body_read:
                if x.body_done:
                    data = b""
                elif x.request.chunked:
                    data = await self._read_chunked()
                else:
                    data = await self._read_data()
                    x.body_done = not x.body_left
            if x.body_read.cancelled_caught:
                return self._gone()
        except _BadRequest as error:
            log.info("HTTP request body refused (%d): %s", error.status, error)
            if not x.started:  # answered here; what the app answers is dropped
                x.malformed = x.started = x.finished = True
                await self._answer_alone(error.status)
            return self._gone()
        except _Gone:
            return self._gone()
        x.request_ended = x.body_done
        return {"type": "http.request", "body": data, "more_body": not x.body_done}

    def _gone(self) -> Message:
        """What the app reads once no more of the request will be read."""
        self._x.close_after = self._x.request_ended = True
        return dict(_DISCONNECT)

    async def _disconnected(self) -> Message:
        """Once the client leaves; what it pipelines meanwhile is kept, up to MAX_PIPELINED."""
        while len(self._buffer) < MAX_PIPELINED:
            data = await self._fill()
            if not data:
                return self._gone()
            self._buffer += data
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- writing ------------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        """ASGI's send."""
        kind = message["type"]
        if self._x.malformed:
            return
        if kind == "http.response.start" and not self._x.started:
            self._start(int(message["status"]), message.get("headers", ()))
        elif kind == "http.response.body" and self._x.started and not self._x.finished:
            await self._body(message.get("body", b""), message.get("more_body", False))
        elif kind == ZERO_COPY_SEND and self._x.started and not self._x.finished:
            await self._file(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} at this point of the answer")

    def _start(self, status: int, headers: Any) -> None:
        """The answer's head, held until its body's first part: one write for a small answer, and
        a Connection: close decided meanwhile (a body left unread) said in it."""
        x = self._x
        request = x.request
        x.started = True
        x.no_body = request.method == "HEAD" or status in _NO_BODY_STATUSES
        lines = [_STATUS_LINES.get(status) or _status_line(status)]
        for raw_name, raw_value in headers:
            name, value = bytes(raw_name).strip().lower(), bytes(raw_value).strip()
            if _HEADER_NAME.fullmatch(name) is None or _BAD_VALUE.search(value) is not None:
                raise ValueError(f"header {name!r} cannot be sent")
            if name == b"content-length":
                x.answer_left = int(value)
            elif name == b"transfer-encoding":
                continue  # the framing is the server's (below)
            elif name == b"connection" and b"close" in value.lower():
                x.close_after = True
                continue  # said once, below
            lines.append(b"%s: %s\r\n" % (name, value))
        if x.answer_left is None and status not in _NO_BODY_STATUSES:
            if request.version == "1.1":
                lines.append(b"transfer-encoding: chunked\r\n")
                x.answer_chunked = not x.no_body
            else:
                x.close_after = True  # the body ends with the connection
        lines.append(_DATE.line())
        x.head = b"".join(lines)

    async def _body(self, data: bytes, more: bool) -> None:
        """A part of the answer's body, framed, with the head before the first."""
        x = self._x
        parts = [x.head + (b"connection: close\r\n\r\n" if x.close_after else b"\r\n")] if x.head else []
        x.head = b""
        if data and not x.no_body:
            if x.answer_left is not None:
                if len(data) > x.answer_left:
                    raise RuntimeError("answer longer than its Content-Length")
                x.answer_left -= len(data)
            parts += [b"%x\r\n" % len(data), data, b"\r\n"] if x.answer_chunked else [data]
        if not more:
            x.finished = True
            if x.close_after:  # a read of the body under way ends: the connection does
                x.body_read.cancel()
            if x.answer_chunked:
                parts.append(b"0\r\n\r\n")
            if x.answer_left and not x.no_body:
                log.error("HTTP %s %r: answer shorter than its Content-Length", x.request.method, x.request.target)
                x.close_after = True
        if len(parts) == 1 or sum(map(len, parts)) <= RECEIVE_SIZE:
            await self._write(b"".join(parts))
        else:  # a large part is written as it is rather than copied
            for part in parts:
                await self._write(part)

    async def _answer_alone(self, status: int) -> None:
        """An answer of the server's own, without a body, that ends the connection."""
        head = _STATUS_LINES.get(status) or _status_line(status)
        await self._write(head + b"content-length: 0\r\nconnection: close\r\n" + _DATE.line() + b"\r\n")

    async def _write(self, data: bytes) -> None:
        if data:
            await self._guarded(self._stream.send_all, data)

    async def _guarded(self, send: Callable[..., Awaitable[None]], *args: Any) -> None:
        """A write, whole whatever is cancelled meanwhile (a half-sent answer would garble the
        next); a client that left ends the connection, cancelling what it runs."""
        await _take(self._write_lock)
        try:
            try:
                with trio.CancelScope(shield=True):
                    await send(*args)
            finally:
                self._write_lock.release()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._stream.abort("the client left before its answer was sent")
            await trio.lowlevel.checkpoint()
            raise _Gone from None

    async def _file(self, message: Message) -> None:
        """A part of the answer's body sent from an open file by the kernel, without a copy
        (ASGI's zero-copy send); in an answer of known length only."""
        x = self._x
        if x.answer_chunked:
            raise RuntimeError("a file is sent in an answer of known length only")
        file, offset = message["file"], message.get("offset", 0)
        fd = file if isinstance(file, int) else file.fileno()
        count = message.get("count")
        if count is None:
            count = os.fstat(fd).st_size - offset
        if x.head:
            await self._body(b"", more=True)
        if count and not x.no_body:
            if x.answer_left is None or count > x.answer_left:
                raise RuntimeError("answer longer than its Content-Length")
            x.answer_left -= count
            await self._guarded(self._stream.send_file, fd, offset, count)
        if not message.get("more_body", False):
            await self._body(b"", more=False)
