"""hypercorn's HTTP/1 protocol of one connection, with fewer writes and task switches per request.

A small request's own work is a fraction of what serving it costs: each write to the
socket and each hand-over between the task reading the connection and the task running
the app is a pass of trio's scheduler (an ``epoll_wait``, the scheduler's bookkeeping).
hypercorn writes an answer's head and its body separately, and hands every request
message to the app through a channel whose ``send`` always yields. Here:

- the head of an answer waits for the first part of its body (or for its end) and
  leaves in the same write: one write for an answer of one part, as Orthanc sends it;
- a request message is put in the app's queue without yielding when there is room
  (the reader yields anyway at its next read), and taken by the app without yielding
  when it is there; a full queue still stops the reader, an empty one the app.

What goes on the wire is what hypercorn sends, byte for byte; only how the bytes are
grouped into writes changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import chain
from typing import Any

import h11
import hypercorn.config
import trio
from hypercorn.events import RawData
from hypercorn.protocol.events import Body, EndBody, Response
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio.task_group import TaskGroup, _handle
from hypercorn.typing import AppWrapper, ASGIReceiveEvent, ASGISendEvent, H11SendableEvent, Scope

# The final statuses: an answer below them (100 Continue, 103) is informational and goes out at once.
FINAL_STATUS = 200


class AppTasks(TaskGroup):
    """hypercorn's task group of one connection, whose queue to the app yields only when it
    must wait: the reader's put when the queue is full, the app's take when it is empty."""

    async def spawn_app(
        self,
        app: AppWrapper,
        config: hypercorn.config.Config,
        scope: Scope,
        send: Callable[[ASGISendEvent | None], Awaitable[None]],
    ) -> Callable[[ASGIReceiveEvent], Awaitable[None]]:
        to_app, from_reader = trio.open_memory_channel[ASGIReceiveEvent](config.max_app_queue_size)
        assert self._nursery is not None

        async def take() -> ASGIReceiveEvent:
            try:
                return from_reader.receive_nowait()
            except trio.WouldBlock:
                return await from_reader.receive()

        self._nursery.start_soon(_handle, app, config, scope, take, send, trio.to_thread.run_sync, trio.from_thread.run)

        async def put(message: ASGIReceiveEvent) -> None:
            try:
                to_app.send_nowait(message)
            except trio.WouldBlock:
                await to_app.send(message)

        return put


class OneWriteH11Protocol(H11Protocol):
    """hypercorn's HTTP/1 protocol, writing an answer's head together with its body."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._head = b""  # an answer's head, until its body's first part or end

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, Response) and event.status_code >= FINAL_STATUS:
            headers = list(chain(event.headers, self.config.response_headers("h11")))
            if self.keep_alive_requests >= self.config.keep_alive_max_requests:
                headers.append((b"connection", b"close"))
            self._head = self._h11_bytes(h11.Response(headers=headers, status_code=event.status_code))
        elif isinstance(event, Body):
            await self._write(self._h11_bytes(h11.Data(data=event.data)))
        elif isinstance(event, EndBody):
            await self._write(self._h11_bytes(h11.EndOfMessage()))
        else:
            await self._write(b"")
            await super().stream_send(event)

    def _h11_bytes(self, event: H11SendableEvent) -> bytes:
        """The bytes of ``event``, as hypercorn makes them (none once the client broke the protocol)."""
        try:
            return self.connection.send(event) or b""
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            return b""

    async def _write(self, data: bytes) -> None:
        """``data`` after the head held back, if any: one write of both."""
        if self._head:
            data, self._head = self._head + data, b""
        if data:
            await self.send(RawData(data=data))
