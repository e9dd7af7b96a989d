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
from collections.abc import MutableMapping
from typing import Any

import hypercorn.config
import trio
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState
from hypercorn.utils import wrap_app

from .connection import ClientLimits, GuardedStream
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
RECEIVE_SIZE = 64 * 1024
# Idle keep-alive connections are closed after this long at least (HttpRequestTimeout if longer).
MIN_KEEP_ALIVE = 5


def connection_of(scope: MutableMapping[str, Any]) -> GuardedStream | None:
    """The connection an ASGI request arrived on (None when not served by :func:`serve_http`)."""
    return scope.get("state", {}).get(CONNECTION_KEY)


def _hypercorn_config(settings: HttpSettings) -> hypercorn.config.Config:
    hconfig = hypercorn.config.Config()
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    hconfig.keep_alive_timeout = max(MIN_KEEP_ALIVE, settings.request_timeout)
    return hconfig


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
                await TCPServer(self._app, self._hconfig, self._worker, state, guarded).run()  # type: ignore[arg-type]
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


async def serve_http(app: ASGIFramework, settings: HttpSettings, *, task_status: trio.TaskStatus[int]) -> None:
    """Serve ``app`` on HttpBindAddress:HttpPort until cancelled; reports the bound port."""
    hconfig = _hypercorn_config(settings)
    wrapped = wrap_app(app, hconfig.wsgi_max_body_size, "asgi")
    listeners = await trio.open_tcp_listeners(settings.port, host=settings.bind_address)
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrapped, hconfig, state)
    connections = _Connections(wrapped, hconfig, settings, state)
    async with trio.open_nursery() as nursery:
        await nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        await nursery.start(trio.serve_listeners, connections.handle, listeners)
        task_status.started(int(listeners[0].socket.getsockname()[1]))
        try:
            await trio.sleep_forever()
        finally:
            connections.stop()
