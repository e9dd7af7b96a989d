"""The request body around the app: its size limit, and what becomes of it when the app answers early.

A body whose Content-Length is over MaximumRequestSize gets 413 before the app sees it.

An answer sent before the body was read (401, 403, 404, 405, 413...) leaves the body
on the connection, and the client's next request behind it: a client that sends that
request on the same connection, a retry with credentials say, must not wait forever. So
before such an answer ends, the rest of the body is read and dropped, up to
:data:`DRAIN_LIMIT`, and the connection serves the next request. A body longer than that,
or of unknown length, gets ``Connection: close`` on the answer and the connection is
closed after it.

This is also where the connection learns when the client owes body bytes, which
the time limits of :mod:`.connection` apply to.
"""

from __future__ import annotations

import logging

import trio

from ..units import MEGABYTE
from .asgi import App, Message, Receive, Send, send_error
from .server import connection_of
from .spool import too_large

log = logging.getLogger(__name__)

# An unread body is read and dropped up to this many bytes after an early answer.
DRAIN_LIMIT = 64 * MEGABYTE


def _framing(scope: Message) -> tuple[int | None, bool]:
    """The request's declared Content-Length (None: none, or not a number) and whether it is chunked."""
    length: int | None = None
    chunked = False
    found_length = False
    for key, value in scope.get("headers", []):
        name = key.lower()
        if name == b"content-length" and not found_length:
            found_length = True
            length = int(value) if bytes(value).isdigit() else None
        elif name == b"transfer-encoding" and not chunked:
            chunked = b"chunked" in bytes(value).lower()
    return length, chunked


class _Body:
    """How much of a request's body was received, and how much is still owed."""

    def __init__(self, length: int | None) -> None:
        self.length = length
        self.finished = trio.Event()
        self.received = 0

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def drainable(self) -> bool:
        """Whether the rest can be read and dropped (see DRAIN_LIMIT)."""
        return self.done or (self.length is not None and self.length - self.received <= DRAIN_LIMIT)


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class RequestBody:
    """The rules above, applied to every HTTP request by the front (front.py)."""

    def __init__(self, limit_bytes: int, describe_errors: bool) -> None:
        self.limit = limit_bytes
        self.describe_errors = describe_errors

    async def serve(self, scope: Message, receive: Receive, send: Send, app: App) -> None:
        """Run ``app`` on the request, its body tracked (a request without a body as it came)."""
        connection = connection_of(scope)
        length, chunked = _framing(scope)
        if not chunked and not length:
            await app(scope, receive, send)  # no body: nothing to track, nothing left unread
            return
        body = _Body(length)
        if connection is not None:
            connection.expect_body()

        async def tracked_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body.finished.set()  # complete, or the client is gone: nothing more will come
                if connection is not None:
                    connection.body_received()
            body.received += len(message.get("body", b""))
            return message

        async def drain() -> None:
            """Read and drop what is left of the body, up to DRAIN_LIMIT.

            Quart may be reading the body at the same time: the end may reach it instead, so
            the wait for the next part also stops when the body is complete.
            """
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_when_set, body.finished, nursery.cancel_scope)
                drained = 0
                while not body.done and drained <= DRAIN_LIMIT:
                    drained += len((await tracked_receive()).get("body", b""))
                nursery.cancel_scope.cancel()

        async def drain_or_abort() -> None:
            await drain()
            if not body.done and connection is not None:
                connection.abort("its request body is too long to be read and dropped")

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.drainable():
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            last = message["type"] == "http.response.body" and not message.get("more_body", False)
            if not last or body.done:
                await send(message)
                return
            # The connection decides, as the answer ends, whether it serves another request: drop
            # the body first, so it can.
            if body.drainable():
                await drain()
            if body.done:
                await send(message)
                return
            # Too long to drop: the answer says Connection: close, and its end tells the drain that
            # the client is gone.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drain_or_abort)
                await send(message)

        try:
            if length is not None and length > self.limit:
                await self._too_large(scope, tracked_send)
            else:
                await app(scope, tracked_receive, tracked_send)
        finally:
            if not body.done and connection is not None:
                connection.abort("its request body was left unread")

    async def _too_large(self, scope: Message, send: Send) -> None:
        log.warning("%s %s: body over MaximumRequestSize", scope["method"], scope["path"])
        await send_error(send, too_large(self.limit), scope["method"], scope["path"], self.describe_errors)
