"""The HTTP server: the connections the node accepts, each served by :mod:`.http1`.

A general server accepts every connection it is offered and trusts every client to keep
sending and reading. Accepting them here lets the node refuse the connections over
``HttpMaximumConnections`` at once (a 503, then close) instead of running out of file
descriptors, and serve each accepted one as a :class:`GuardedStream`, which enforces the
client time limits. hypercorn drives the app's lifespan (start-up and shutdown), as its
trio worker does; it is pinned below 0.19, its lifespan driver being used as it is.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, cast

import hypercorn.config
import trio
from hypercorn.trio.lifespan import Lifespan
from hypercorn.typing import ASGIFramework
from hypercorn.utils import wrap_app

from ..net.tcp import StartGate, listeners_of
from .asgi import App
from .connection import RECEIVE_SIZE, ClientLimits, GuardedStream
from .http1 import Http1Connection
from .settings import HttpSettings

log = logging.getLogger(__name__)

# Where the ASGI layer finds the connection of a request: in the state copied into every scope.
CONNECTION_KEY = "node.connection"
# Said to a client over the connection limit, without reading its request.
BUSY_ANSWER = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 1\r\nconnection: close\r\n\r\n"
# A refused client gets this long to read its 503 (its request is read and dropped meanwhile,
# so that closing does not reset the connection under the answer), up to this many bytes.
REFUSAL_GRACE = 1.0
REFUSAL_DRAIN = 64 * 1024
# Idle keep-alive connections are closed after this long at least (HttpRequestTimeout if longer).
MIN_KEEP_ALIVE = 5


def _address(address: Any) -> tuple[str, int] | None:
    """A socket address as ASGI's scope gives it: host and port (None for a Unix socket's)."""
    return (str(address[0]), int(address[1])) if isinstance(address, tuple) else None


def connection_of(scope: MutableMapping[str, Any]) -> GuardedStream | None:
    """The connection an ASGI request arrived on (None when not served by :func:`serve_http`)."""
    return scope.get("state", {}).get(CONNECTION_KEY)


def _hypercorn_config() -> hypercorn.config.Config:
    """What hypercorn's lifespan driver reads: where it logs, and nothing of access."""
    hconfig = hypercorn.config.Config()
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    return hconfig


class _Connections:
    """Accepted connections, counted against the limit; each served by :class:`Http1Connection`."""

    def __init__(self, app: App, settings: HttpSettings, state: dict[str, Any]) -> None:
        self._app = app
        self._keep_alive = max(MIN_KEEP_ALIVE, settings.request_timeout)
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
                socket = stream.socket
                served = Http1Connection(
                    self._app, guarded, state={**self._state, CONNECTION_KEY: guarded}, keep_alive=self._keep_alive,
                    client=_address(socket.getpeername()), server=_address(socket.getsockname()),
                )  # fmt: skip
                await served.serve()
            except OSError:
                pass  # the client left before it could be served
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
    app: ASGIFramework,
    settings: HttpSettings,
    *,
    fd: int | None = None,
    gate: StartGate | None = None,
    task_status: trio.TaskStatus[int],
) -> None:
    """Serve ``app`` on HttpBindAddress:HttpPort, or on the inherited listening socket ``fd`` if
    there is one (accepting once the members' ``gate`` opens), until cancelled; reports the bound port."""
    hconfig = _hypercorn_config()
    state: dict[str, Any] = {}
    lifespan = Lifespan(wrap_app(app, hconfig.wsgi_max_body_size, "asgi"), hconfig, state)
    connections = _Connections(cast(App, app), settings, state)
    listeners = await listeners_of(fd, settings.port, settings.bind_address, held=lambda: connections.open, gate=gate)
    async with trio.open_nursery() as nursery:
        await nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        await nursery.start(trio.serve_listeners, connections.handle, listeners)
        task_status.started(int(listeners[0].socket.getsockname()[1]))
        try:
            await trio.sleep_forever()
        finally:
            connections.stop()
