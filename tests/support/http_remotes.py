"""An HTTP server that answers every request with one fixed status, or never answers: the Orthanc
peer that fails, for the transfer tests. Raw Trio streams, one request per connection."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

HEADER_END = b"\r\n\r\n"
RECEIVE_SIZE = 65536


@dataclass
class HttpRemote:
    port: int
    status: int | None  # None: read the request, never answer
    requests: list[str] = field(default_factory=list)  # request lines received
    stalled: trio.Event = field(default_factory=trio.Event)  # a request arrived that is never answered
    closed: trio.Event = field(default_factory=trio.Event)  # the client closed a connection it was waiting on
    # Answer as if keeping the connection alive, then close it: a keep-alive that ends between two requests.
    hang_up: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _serve(self, stream: trio.SocketStream) -> None:
        async with stream:
            received = b""
            try:
                while HEADER_END not in received:
                    chunk = await stream.receive_some(RECEIVE_SIZE)
                    if not chunk:
                        return
                    received += chunk
                self.requests.append(received.split(b"\r\n", 1)[0].decode())
                if self.status is None:
                    self.stalled.set()
                    while await stream.receive_some(RECEIVE_SIZE):
                        pass
                    self.closed.set()
                    return
                connection = "keep-alive" if self.hang_up else "close"
                answer = f"HTTP/1.1 {self.status} Refused\r\nContent-Length: 0\r\nConnection: {connection}\r\n\r\n"
                await stream.send_all(answer.encode())
            except trio.BrokenResourceError:
                self.closed.set()


async def start_http_remote(nursery: trio.Nursery, status: int | None, *, hang_up: bool = False) -> HttpRemote:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    remote = HttpRemote(int(listeners[0].socket.getsockname()[1]), status, hang_up=hang_up)
    nursery.start_soon(trio.serve_listeners, remote._serve, listeners)
    return remote
