"""An answer sent before the request body was read leaves the connection usable, or closes it: never a hang.

A raw socket client sends its whole request (headers, then a body larger than the
queues between hypercorn and the app) while reading, gets its early answer, then
sends its next request on the same connection, as retrying clients do.
"""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path
from typing import Any

import h11
import pytest
import trio

from tests.support.node import node_config, start_node

BODY = b"\0" * (2 * 1024 * 1024)  # far more than hypercorn queues for the app (10 chunks of 64 KB)
AUTH = ("Authorization", "Basic " + base64.b64encode(b"alice:secret").decode())
TIME_LIMIT = 10


class RawClient:
    """HTTP/1.1 over one socket, requests written by hand, answers parsed by h11."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.http = h11.Connection(h11.CLIENT)

    async def exchange(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> Any:
        """Send the request while reading its answer; the answer (h11.Response), or None when the server closed."""
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
        all_headers = [("Host", "127.0.0.1"), ("Content-Length", str(len(body))), *headers]
        data = self.http.send(h11.Request(method=method, target=target, headers=all_headers))
        data += self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.send, data)
            answer = await self._read_answer()
        return answer

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(trio.BrokenResourceError):  # the server closed: its answer says why
            await self.stream.send_all(data)

    async def _read_answer(self) -> Any:
        response = None
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                self.http.receive_data(data)
                if not data and response is None:
                    return None
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return response


async def _client(nursery: trio.Nursery, tmp_path: Path, **options: Any) -> RawClient:
    node = await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False, **options))
    return RawClient(await trio.open_tcp_stream("127.0.0.1", node.ports["http"]))


CASES = {
    "401 unauthenticated": ({"AuthenticationEnabled": True}, "POST", "/instances", []),
    "403 cross-site": ({}, "POST", "/instances", [("Origin", "http://elsewhere.example")]),
    "404 unknown route": ({}, "POST", "/no/such/route", []),
    "405 wrong method": ({}, "POST", "/system", []),
    "413 too large": ({"MaximumRequestSize": 1}, "POST", "/instances", []),
}


@pytest.mark.parametrize("case", CASES)
async def test_next_request_on_the_same_connection_is_answered(
    nursery: trio.Nursery, tmp_path: Path, case: str
) -> None:
    options, method, target, headers = CASES[case]
    client = await _client(nursery, tmp_path, RegisteredUsers={"alice": "secret"}, **options)
    with trio.fail_after(TIME_LIMIT):
        first = await client.exchange(method, target, headers, BODY)
        assert first is not None and first.status_code == int(case[:3])
        second = await client.exchange("GET", "/system", [AUTH])
    assert second is not None and second.status_code == 200


async def test_body_too_long_to_drop_closes_the_connection(nursery: trio.Nursery, tmp_path: Path) -> None:
    """A body over the drop limit is not read: the answer says Connection: close, and the connection closes."""
    client = await _client(nursery, tmp_path, AuthenticationEnabled=True, RegisteredUsers={"alice": "secret"})
    announced = 256 * 1024 * 1024  # under MaximumRequestSize, over what is read to be dropped
    request = (
        f"POST /instances HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {announced}\r\n\r\n".encode() + BODY
    )
    received = b""
    with trio.fail_after(TIME_LIMIT):
        async with trio.open_nursery() as sending:
            sending.start_soon(client.send, request)
            while data := await client.stream.receive_some(65536):
                received += data
    head = received.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 401") and b"connection: close" in head
