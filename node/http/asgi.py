"""Reading ASGI requests and sending answers without a framework, as Quart would send them.

The layers in front of the Quart app (limits, access control, the fast path) answer some
requests themselves; their answers must carry exactly the bytes a Quart answer carries:
headers in the same order, ``content-type`` then ``content-length``, no ``content-type``
on an empty body, and Orthanc's JSON error body where errors are described.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from ..errors import OrthancError
from .answers import JSON_TYPE, error_body, pretty_json

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
App = Callable[[Message, Receive, Send], Awaitable[None]]


def header(scope: Message, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), decoded as Latin-1, as Quart reads it."""
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def request_path(scope: Message) -> str:
    """The path as Quart sees it (and matches its routes on): with a single leading slash."""
    return "/" + str(scope["path"]).lstrip("/")


def client_address(scope: Message) -> str:
    """The client's address, as Quart's ``request.remote_addr`` gives it."""
    client = scope.get("client")
    return str(client[0]) if client else "<local>"


def content_length(size: int) -> tuple[bytes, bytes]:
    return (b"content-length", str(size).encode())


async def send_answer(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = (), encoding: str | None = None
) -> None:
    """A whole answer; ``headers`` come first, then the body's length, then its ``encoding`` if compressed."""
    start_headers = [*headers, content_length(len(body))]
    if encoding is not None:
        start_headers.append((b"content-encoding", encoding.encode()))
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


async def send_empty(send: Send, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """An answer without a body, and so without a content type."""
    await send_answer(send, status, b"", headers)


async def send_error(send: Send, error: OrthancError, method: str, path: str, describe: bool) -> None:
    """Orthanc's answer to an error: its JSON description (HttpDescribeErrors), or its status alone."""
    if not describe:
        await send_empty(send, error.http_status)
        return
    body = pretty_json(error_body(error, method, path)).encode()
    await send_answer(send, error.http_status, body, [(b"content-type", JSON_TYPE.encode())])
