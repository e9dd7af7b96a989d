"""HTTP/1.1 over a bare socket: requests written byte for byte, answers read with h11.

For the tests of what the node's HTTP server does with what a client library would never
send: pipelined requests, malformed heads, chunked bodies, ``Expect: 100-continue``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import h11
import trio

READ_SIZE = 65536


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case; the last of a repeated header
    body: bytes


class RawConnection:
    """One connection to ``port``; answers are read in the order of the requests they answer."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._pending = b""  # read, not yet part of an answer
        self.closed = False  # the server closed the connection

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, data: bytes) -> None:
        """``data``, or what of it the server took before it closed (its answer says why)."""
        with contextlib.suppress(trio.BrokenResourceError):
            await self.stream.send_all(data)

    async def exchange(self, request: bytes, method: str = "GET") -> Answer | None:
        """Send ``request`` while reading its answer (a large body may be answered before it is
        all sent): the answer, or None when the server closed the connection first."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.send, request)
            return await self.answer(method)

    async def _read(self) -> bytes:
        """The server's next bytes; b"" once it closed the connection."""
        try:
            data = await self.stream.receive_some(READ_SIZE)
        except trio.BrokenResourceError:
            data = b""
        self.closed = not data
        return bytes(data)

    async def answer(self, method: str = "GET") -> Answer | None:
        """The next answer (to a request of ``method``, which says whether it has a body); None
        when the server closed the connection first."""
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        if self._pending:  # (no bytes would mean the end of the stream to h11)
            parser.receive_data(self._pending)
        self._pending = b""
        status, headers, body = 0, {}, b""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                data = await self._read()
                if not data and not status:
                    return None
                parser.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {name.decode(): value.decode("latin-1") for name, value in event.headers}
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._pending = bytes(parser.trailing_data[0])
                return Answer(status, headers, body)

    async def wait_closed(self) -> bool:
        """Whether the server closes the connection (reading anything it still sends)."""
        while not self.closed:
            await self._read()
        return True

    async def aclose(self) -> None:
        await self.stream.aclose()
