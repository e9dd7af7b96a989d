"""Stored files POSTed to an Orthanc peer's ``{Url}instances``, one after the other, on one kept-alive
HTTP/1.1 connection.

A peer store sends thousands of small requests one at a time, each waiting for the peer's
answer (as Orthanc's own does). A general client (httpx) spends about a millisecond of CPU
on each and writes the headers and the body apart, so the peer is woken twice per instance;
here each request goes out in one write (headers and body gathered, the body never copied)
and the answer is read with h11. A connection the peer closed between two requests (its
keep-alive timeout) is replaced and the request sent again, once. Each connect, write and
read is bounded by the peer's timeout; failures are worded as :class:`~.peer_client.PeerClient` words them.

Peers this client does not handle (a proxy from the environment, credentials in the URL)
go through :class:`~.peer_client.PeerClient`: :func:`instance_poster` picks.
"""

from __future__ import annotations

import base64
import urllib.request
from typing import Protocol

import h11
import httpx
import trio

from ..net.ul.association import send_buffers, write_now
from .peer_client import (
    DICOM_HEADERS,
    GZIP_HEADERS,
    PeerClient,
    PeerTarget,
    exchange_failed,
    http_error,
    ssl_context,
    timed_out,
    unreachable,
)

INSTANCES = "instances"
POST = "POST"
RECEIVE_SIZE = 1 << 16
MAX_ANSWER = 1 << 20  # bytes of an answer body read (and dropped) before the peer is deemed broken
DEFAULT_PORTS = {"http": 80, "https": 443}
SUCCESS_CLASS = 2  # the hundreds digit of a 2xx status


class InstancePoster(Protocol):
    async def post_instance(self, body: bytes, *, gzipped: bool) -> object: ...

    async def aclose(self) -> None: ...


def instance_poster(target: PeerTarget) -> InstancePoster:
    """The kept-alive poster for this peer, or the general client when the peer needs what it lacks."""
    url = httpx.URL(target.peer.url)
    proxied = url.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(url.host)
    if url.scheme not in DEFAULT_PORTS or url.userinfo or proxied:
        return PeerClient(target)
    return KeptAlivePoster(target)


class _Stale(Exception):
    """A reused connection was found closed before any answer: send again on a new one."""


class KeptAlivePoster:
    def __init__(self, target: PeerTarget) -> None:
        peer = target.peer
        url = httpx.URL(peer.url)
        self.url = peer.url
        self._timeout = target.timeout
        self._tls = ssl_context(target.verify) if url.scheme == "https" else None
        self._host = url.host
        self._port = url.port or DEFAULT_PORTS[url.scheme]
        self._target = (url.raw_path.decode("ascii") or "/") + INSTANCES
        headers = [("Host", url.netloc.decode("ascii")), ("Accept", "*/*")]
        if peer.username is not None:
            credentials = f"{peer.username}:{peer.password or ''}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(credentials).decode("ascii")))
        self._headers = [*headers, *DICOM_HEADERS.items(), *peer.headers]
        self._stream: trio.abc.Stream | None = None
        self._connection = h11.Connection(h11.CLIENT)
        self._reused = False  # the open connection has carried a request already

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def post_instance(self, body: bytes, *, gzipped: bool) -> None:
        """POST one file (gzipped already if ``gzipped``); a non-2xx answer raises PeerHttpError."""
        try:
            status = await self._exchange(body, gzipped)
        except _Stale:
            status = await self._exchange(body, gzipped)
        if status // 100 != SUCCESS_CLASS:
            raise http_error(self.url, POST, INSTANCES, status)

    async def _exchange(self, body: bytes, gzipped: bool) -> int:
        if self._stream is None:
            await self._connect()
        try:
            return await self._request(body, gzipped)
        except _Stale:
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()  # half an exchange: the connection cannot carry another
            raise

    async def _connect(self) -> None:
        try:
            with trio.fail_after(self._timeout):
                stream: trio.abc.Stream = await trio.open_tcp_stream(self._host, self._port)
                if self._tls is not None:
                    stream = trio.SSLStream(stream, self._tls, server_hostname=self._host)
                    await stream.do_handshake()
        except trio.TooSlowError as error:
            raise timed_out(self.url, POST, INSTANCES, error) from error
        except (OSError, trio.BrokenResourceError) as error:
            raise unreachable(self.url, error) from error
        self._stream = stream
        self._connection = h11.Connection(h11.CLIENT)
        self._reused = False

    async def _request(self, body: bytes, gzipped: bool) -> int:
        stream, connection = self._stream, self._connection
        assert stream is not None
        headers = [*self._headers, ("Content-Length", str(len(body)))]
        if gzipped:
            headers += GZIP_HEADERS.items()
        head = connection.send(h11.Request(method=POST, target=self._target, headers=headers))
        connection.send_with_data_passthrough(h11.Data(data=body))
        connection.send(h11.EndOfMessage())
        reused, self._reused = self._reused, True
        answered = False
        try:
            with trio.fail_after(self._timeout):
                await _send(stream, [head or b"", body])
            status = 0
            read = 0
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    with trio.fail_after(self._timeout):
                        data = await stream.receive_some(RECEIVE_SIZE)
                    if not data and reused and not answered:
                        raise _Stale()
                    connection.receive_data(bytes(data))
                    answered = answered or bool(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    read += len(event.data)
                    if read > MAX_ANSWER:
                        raise h11.RemoteProtocolError(f"an answer of more than {MAX_ANSWER} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise trio.BrokenResourceError("the peer closed the connection")
        except trio.TooSlowError as error:
            raise timed_out(self.url, POST, INSTANCES, error) from error
        except (OSError, trio.BrokenResourceError, h11.ProtocolError) as error:
            if reused and not answered:
                raise _Stale() from error
            raise exchange_failed(self.url, error) from error
        if connection.our_state is h11.DONE and connection.their_state is h11.DONE:
            connection.start_next_cycle()
        else:  # the peer closes after this answer
            await self.aclose()
        return status


async def _send(stream: trio.abc.Stream, buffers: list[bytes]) -> None:
    """Headers and body in one write when the stream is a plain socket, without a wait when the
    socket takes them at once."""
    if isinstance(stream, trio.SocketStream):
        rest = write_now(stream, buffers)
        if rest:
            await send_buffers(stream, rest)
    else:
        await stream.send_all(b"".join(buffers))
