"""An answer sent before the request body was read leaves the connection usable, or closes it: never a hang.

A raw socket client sends its whole request (headers, then a body larger than the
socket buffers between it and the app) while reading, gets its early answer, then
sends its next request on the same connection, as retrying clients do.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.support.node import node_config, start_node
from tests.support.raw_http import RawConnection

BODY = b"\0" * (2 * 1024 * 1024)  # far more than the socket buffers hold
AUTH = ("Authorization", "Basic " + base64.b64encode(b"alice:secret").decode())
TIME_LIMIT = 10


def _request(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _client(nursery: trio.Nursery, tmp_path: Path, **options: Any) -> RawConnection:
    node = await start_node(nursery, node_config(tmp_path, DicomServerEnabled=False, **options))
    return await RawConnection.open(node.ports["http"])


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
        first = await client.exchange(_request(method, target, headers, BODY), method)
        assert first is not None and first.status == int(case[:3])
        second = await client.exchange(_request("GET", "/system", [AUTH]))
    assert second is not None and second.status == 200


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
