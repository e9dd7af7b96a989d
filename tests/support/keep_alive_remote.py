"""An HTTP server that keeps every connection alive and answers each request with 200 and ``{}``,
counting the connections it was given: for the peer store's one-connection-per-job test."""

from __future__ import annotations

from dataclasses import dataclass

import trio

HEADER_END = b"\r\n\r\n"
RECEIVE_SIZE = 65536
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class KeepAliveRemote:
    port: int
    connections: int = 0
    requests: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def _serve(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        async with stream:
            received = b""
            while True:
                while HEADER_END not in received:
                    chunk = await stream.receive_some(RECEIVE_SIZE)
                    if not chunk:
                        return
                    received += chunk
                head, received = received.split(HEADER_END, 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(received) < length:
                    received += await stream.receive_some(RECEIVE_SIZE)
                received = received[length:]
                self.requests += 1
                await stream.send_all(ANSWER)


async def start_keep_alive_remote(nursery: trio.Nursery) -> KeepAliveRemote:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    remote = KeepAliveRemote(int(listeners[0].socket.getsockname()[1]))
    nursery.start_soon(trio.serve_listeners, remote._serve, listeners)
    return remote
