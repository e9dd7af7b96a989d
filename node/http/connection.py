"""One HTTP connection's socket, with the time limits a client must keep to.

An HTTP server waits for a client's bytes, and for room to send to it, for as long as it
takes: a client that announces a body and trickles it, or that asks for an answer
and never reads it, holds its connection (and whatever serves it) forever. Here:

- while a client owes the body of its request, no wait for its next bytes may last
  longer than the request timeout, and past a first request timeout of grace it
  must have sent at least the minimum rate on average. Only time spent waiting on
  the client counts, not time the node spends before reading more;
- a send that makes no progress for the request timeout (a client that stopped
  reading) fails.

Either way the connection is ended: everything it runs is cancelled, the request's
handler included, so a synchronous archive whose client went silent gives its job
worker back.

Bytes already there are read, and bytes the socket takes at once are written, without
a pass of trio's scheduler: a small request and its answer each cost one system call,
and the task that serves them goes on at once (it waits, and yields, when the socket
has nothing to read or no room).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import trio

from ..net.tcp import open_descriptor, read_ready

log = logging.getLogger(__name__)

# Bytes read at most at once when the reader names no size.
RECEIVE_SIZE = 64 * 1024


@dataclass(frozen=True)
class ClientLimits:
    """What a client must keep to while it sends a request body or reads an answer (0: no limit)."""

    timeout: float  # seconds: longest wait for a client's next bytes, or for room to send
    min_rate: float  # bytes per second, on average, once past the first ``timeout`` seconds of a body

    @property
    def wait(self) -> float:
        """The longest single wait on the client."""
        return self.timeout if self.timeout > 0 else math.inf


class GuardedStream(trio.abc.HalfCloseableStream):
    """The socket stream of one connection, as :mod:`.http1` serves it.

    The ASGI layer says when the client owes body bytes (:meth:`expect_body`,
    :meth:`body_received`) and can end the connection (:meth:`abort`); ending it
    cancels ``scope``, the scope that runs the connection.
    """

    def __init__(self, stream: trio.SocketStream, limits: ClientLimits, scope: trio.CancelScope) -> None:
        self._stream = stream
        self.socket = stream.socket
        self._limits = limits
        self._scope = scope
        self._owed_since: float | None = None  # when the client started to owe body bytes
        self._waited = 0.0  # seconds spent waiting on the client since then
        self._received = 0  # bytes received since then
        self._read_scope: trio.CancelScope | None = None
        self._send_scope: trio.CancelScope | None = None
        self.aborted = False

    # -- what the ASGI layer tells ------------------------------------------------

    def expect_body(self) -> None:
        """A request with a body started: the client owes bytes from now on."""
        self._owed_since = trio.current_time()
        self._waited = 0.0
        self._received = 0
        if self._read_scope is not None:
            self._read_scope.deadline = self._read_deadline()

    def body_received(self) -> None:
        """The body is complete (or no longer wanted): waiting on the client is not limited any more."""
        self._owed_since = None
        if self._read_scope is not None:
            self._read_scope.deadline = math.inf

    def abort(self, reason: str) -> None:
        """End the connection at once, cancelling what it runs."""
        if not self.aborted:
            self.aborted = True
            log.warning("closing the HTTP connection of %s: %s", self._peer(), reason)
        self._scope.cancel()

    def stop_sending(self) -> None:
        """The server stops: a send in progress gives up now rather than at its timeout.

        The connection shields its sends from cancellation; only a scope inside the send reaches it.
        """
        self.aborted = True
        if self._send_scope is not None:
            self._send_scope.cancel()

    # -- the stream ---------------------------------------------------------------

    def _peer(self) -> str:
        try:
            host, port = self.socket.getpeername()[:2]
        except OSError:
            return "a client"
        return f"{host}:{port}"

    def _read_deadline(self) -> float:
        if self._owed_since is None:
            return math.inf
        wait = self._limits.wait
        if self._limits.min_rate > 0:
            wait = min(wait, self._limits.wait + self._received / self._limits.min_rate - self._waited)
        return trio.current_time() + max(0.0, wait)

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        size = max_bytes or RECEIVE_SIZE
        data = self._read_now(size)
        if data is None:
            data = await self._wait_and_read(size)
        if self._owed_since is not None:
            self._received += len(data)
        return data

    async def _wait_and_read(self, size: int) -> bytes:
        """Wait for the client's next bytes, within the time limits."""
        started = trio.current_time()
        data: bytes | None = None
        with trio.CancelScope(deadline=self._read_deadline()) as scope:
            self._read_scope = scope
            try:
                while data is None:
                    await trio.lowlevel.wait_readable(self.socket)
                    data = self._read_now(size)
            finally:
                self._read_scope = None
        if self._owed_since is not None:
            self._waited += trio.current_time() - max(started, self._owed_since)
        if data is None:
            self.abort("it sends its request body too slowly")
            raise trio.BrokenResourceError("client too slow")
        return data

    def _read_now(self, size: int) -> bytes | None:
        """:func:`~node.net.tcp.read_ready`, with Trio's error for a broken connection."""
        try:
            return read_ready(self.socket, size)
        except OSError as error:
            raise trio.BrokenResourceError(error) from error

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """All of ``data``, written as the socket takes it (see :meth:`_send_as_taken`)."""
        view = memoryview(data)
        await self._send_as_taken(len(view), lambda socket_fd, done: os.write(socket_fd, view[done:]))

    async def send_file(self, fd: int, offset: int, count: int) -> None:
        """``count`` bytes of the open file ``fd`` from ``offset``, copied by the kernel (sendfile)
        as the socket takes them, within the same time limits as :meth:`send_all`."""

        def send(socket_fd: int, done: int) -> int:
            sent = os.sendfile(socket_fd, fd, offset + done, count - done)
            if not sent:  # the file is shorter than its attachment says: the answer cannot be finished
                raise trio.BrokenResourceError("the file ended before its announced length")
            return sent

        await self._send_as_taken(count, send)

    async def _send_as_taken(self, total: int, write: Callable[[int, int], int]) -> None:
        """``total`` bytes, ``write(socket's descriptor, bytes sent so far)`` sending the next ones
        and saying how many the socket took. What it takes at once goes without waiting nor a
        scheduler pass (all of a small answer); each wait for room after that lasts at most the
        request timeout, so a slow client that keeps reading is never cut, one that stopped is."""
        done = 0 if self.aborted else self._write_now(write, 0)
        while done < total:
            await self._wait_for_room()
            done += self._write_now(write, done)

    async def _wait_for_room(self) -> None:
        """Until the socket takes more, at most the request timeout (else the connection ends)."""
        if self.aborted:
            raise trio.BrokenResourceError("connection closed by the server")
        with trio.move_on_after(self._limits.wait) as scope:
            self._send_scope = scope
            try:
                await trio.lowlevel.wait_writable(self.socket)
            finally:
                self._send_scope = None
        if scope.cancelled_caught:
            self.abort("it does not read its answer")
            raise trio.BrokenResourceError("client not reading")

    def _write_now(self, write: Callable[[int, int], int], done: int) -> int:
        """What ``write`` sends at once; 0 when the socket has no room."""
        if self._stream.socket.did_shutdown_SHUT_WR:
            raise trio.ClosedResourceError("the connection's sending side was shut down")
        try:
            return write(open_descriptor(self.socket), done)
        except BlockingIOError:
            return 0
        except OSError as error:
            raise trio.BrokenResourceError(error) from error

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()
