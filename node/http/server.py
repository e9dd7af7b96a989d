"""The HTTP server: hypercorn's HTTP protocol on connections the node accepts itself.

hypercorn's ``serve()`` accepts every connection it is offered and trusts every
client to keep sending and reading. Accepting them here lets the node refuse the
connections over ``HttpMaximumConnections`` at once (a 503, then close) instead of
running out of file descriptors, and hand each accepted one to hypercorn as a
:class:`GuardedStream`, which enforces the client time limits. hypercorn is pinned
below 0.19: its per-connection server, worker context and lifespan driver are used
as they are, the way its own trio worker uses them.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import hypercorn.config
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState
from hypercorn.utils import parse_socket_addr, wrap_app

from ..net.tcp import listeners_of
from .connection import RECEIVE_SIZE, ClientLimits, GuardedStream
from .protocol import AppTasks, OneWriteH11Protocol
from .settings import HttpSettings

log = logging.getLogger(__name__)

# Where the ASGI layer finds the connection of a request: in the state hypercorn copies into every scope.
CONNECTION_KEY = "node.connection"
# Said to a client over the connection limit, without reading its request.
BUSY_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
# A refused client gets this long to read its 503 (its request is read and dropped meanwhile,
# so that closing does not reset the connection under the answer), up to this many bytes.
REFUSAL_GRACE = 1.0
REFUSAL_DRAIN = 64 * 1024
# Idle keep-alive connections are closed after this long at least (HttpRequestTimeout if longer).
MIN_KEEP_ALIVE = 5
# Requests served on one connection before hypercorn closes it: no limit, as Orthanc has none
# (hypercorn's default of 1000 makes a client that keeps its connection reconnect).
KEEP_ALIVE_MAX_REQUESTS = sys.maxsize
HTTP1 = "http/1.1"


def connection_of(scope: MutableMapping[str, Any]) -> GuardedStream | None:
    """The connection an ASGI request arrived on (None when not served by :func:`serve_http`)."""
    return scope.get("state", {}).get(CONNECTION_KEY)


def _hypercorn_config(settings: HttpSettings) -> hypercorn.config.Config:
    hconfig = hypercorn.config.Config()
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    hconfig.keep_alive_timeout = max(MIN_KEEP_ALIVE, settings.request_timeout)
    hconfig.keep_alive_max_requests = KEEP_ALIVE_MAX_REQUESTS
    return hconfig


class _IdleTimer:
    """hypercorn's keep-alive timer of one connection, as one task whose deadline moves lazily.

    hypercorn restarts its idle timer after every answer and stops it at every request, each
    time cancelling a task and starting another: task switches that cost as much as a small
    request's own work. Here one task watches the whole connection; a restart or a stop only
    records when the connection may be closed (never, while a request is served), and the
    task's deadline is moved to that time once it passes (or if it would come too late).
    Once the connection stayed idle for the keep-alive timeout, or when the server
    terminates, it closes the connection as hypercorn's timer does.
    """

    def __init__(self, timeout: float, terminated: Any, close: Callable[[], Awaitable[None]]) -> None:
        self._timeout = timeout
        self._terminated = terminated
        self._close = close
        self._deadline = math.inf
        self._scope: trio.CancelScope | None = None
        self._ended = False

    async def restart(self, task_group: Any, _: Any) -> None:
        self._deadline = trio.current_time() + self._timeout
        if self._scope is None:
            self._scope = trio.CancelScope(deadline=self._deadline)
            task_group._nursery.start_soon(self._watch)
        elif self._scope.deadline > self._deadline:
            self._scope.deadline = self._deadline

    async def stop(self) -> None:
        self._deadline = math.inf

    def end(self) -> None:
        """The connection stopped reading (the client left): nothing more to watch, and the
        connection's task group must not wait for this task."""
        self._ended = True
        if self._scope is not None:
            self._scope.cancel()

    async def _watch(self) -> None:
        assert self._scope is not None
        while True:
            with self._scope:
                await self._terminated.wait()
            if self._ended:
                return
            if self._terminated.is_set() or trio.current_time() >= self._deadline:
                break
            self._scope = trio.CancelScope(deadline=self._deadline)  # moved meanwhile: wait again
        with trio.CancelScope(shield=True):
            await self._close()


class _TCPServer(TCPServer):
    """hypercorn's connection server, cheaper per request: one idle timer (above), the HTTP/1
    protocol of :mod:`.protocol`, no empty writes (the end of every answer of known length),
    and its send lock taken without a scheduler round trip when it is free (the write that
    follows yields anyway)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._idle = _IdleTimer(self.config.keep_alive_timeout, self.context.terminated, self._initiate_server_close)
        self.idle_task = self._idle  # type: ignore[assignment]

    async def run(self) -> None:
        """Serve the connection, as hypercorn does a plain (not TLS) one, with our HTTP/1 protocol."""
        socket = self.stream.socket
        try:
            client = parse_socket_addr(socket.family, socket.getpeername())
            server = parse_socket_addr(socket.family, socket.getsockname())
            async with AppTasks() as task_group:
                self._task_group = task_group
                arguments = (
                    self.app, self.config, self.context, task_group, ConnectionState(self.state),
                    False, client, server, self.protocol_send,
                )  # fmt: skip
                self.protocol = ProtocolWrapper(*arguments, HTTP1)
                self.protocol.protocol = OneWriteH11Protocol(*arguments)
                await self.protocol.initiate()
                await self.idle_task.restart(self._task_group, self._idle_timeout)
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()

    async def _read_data(self) -> None:
        """hypercorn's read loop, without its read timeout (the stream applies the time limits)."""
        try:
            while True:
                try:
                    data = await self.stream.receive_some(RECEIVE_SIZE)
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    break
                await self.protocol.handle(RawData(data=bytes(data)))
                if not data:
                    break
            await self.protocol.handle(Closed())
        finally:
            self._idle.end()

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            await super().protocol_send(event)
            return
        if not event.data:
            return
        try:
            self.send_lock.acquire_nowait()
        except trio.WouldBlock:
            await self.send_lock.acquire()
        try:
            with trio.CancelScope(shield=True):
                await self.stream.send_all(event.data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self.protocol.handle(Closed())
        finally:
            self.send_lock.release()


class _Connections:
    """Accepted connections, counted against the limit; each served by hypercorn."""

    def __init__(
        self, app: Any, hconfig: hypercorn.config.Config, settings: HttpSettings, state: dict[str, Any]
    ) -> None:
        self._app = app
        self._hconfig = hconfig
        self._worker = WorkerContext(None)
        self._state = state
        self._limits = ClientLimits(settings.request_timeout, settings.minimum_receive_rate)
        self._maximum = settings.maximum_connections
        self._open: set[GuardedStream] = set()
        self._refusing = 0

    @property
    def open(self) -> int:
        return len(self._open)

    def stop(self) -> None:
        """Make every send in progress give up (the server is stopping)."""
        for connection in self._open:
            connection.stop_sending()

    async def handle(self, stream: trio.SocketStream) -> None:
        if 0 < self._maximum <= self.open:
            await self._refuse(stream)
            return
        with trio.CancelScope() as scope:
            guarded = GuardedStream(stream, self._limits, scope)
            self._open.add(guarded)
            try:
                state = ConnectionState({**self._state, CONNECTION_KEY: guarded})
                await _TCPServer(self._app, self._hconfig, self._worker, state, guarded).run()
            finally:
                self._open.discard(guarded)
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    async def _refuse(self, stream: trio.SocketStream) -> None:
        """503 and close; past as many refusals in progress as connections allowed, close only."""
        if self._refusing >= self._maximum:
            await stream.aclose()
            return
        self._refusing += 1
        log.warning("HTTP connection refused: %d open, HttpMaximumConnections reached", self.open)
        try:
            with trio.move_on_after(REFUSAL_GRACE):
                await stream.send_all(BUSY_ANSWER)
                await stream.send_eof()
                drained = 0
                while drained < REFUSAL_DRAIN and (data := await stream.receive_some(RECEIVE_SIZE)):
                    drained += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client left first: nothing more to tell it
        finally:
            self._refusing -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()


async def serve_http(
    app: ASGIFramework, settings: HttpSettings, *, fd: int | None = None, task_status: trio.TaskStatus[int]
) -> None:
    """Serve ``app`` on HttpBindAddress:HttpPort, or on the inherited listening socket ``fd`` if
    there is one, until cancelled; reports the bound port."""
    hconfig = _hypercorn_config(settings)
    wrapped = wrap_app(app, hconfig.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, hconfig, state)
    connections = _Connections(wrapped, hconfig, settings, state)
    listeners = await listeners_of(fd, settings.port, settings.bind_address, held=lambda: connections.open)
    async with trio.open_nursery() as nursery:
        await nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        await nursery.start(trio.serve_listeners, connections.handle, listeners)
        task_status.started(int(listeners[0].socket.getsockname()[1]))
        try:
            await trio.sleep_forever()
        finally:
            connections.stop()
