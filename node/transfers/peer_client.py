"""HTTP towards one Orthanc peer: its credentials, headers and timeout, and failures in our words.

httpx runs on Trio (through anyio), so a request lives in the caller's cancel scope: a
job paused or cancelled mid-request drops the request and its connection at once.
Every failure becomes a :class:`~node.transfers.retry.TransferFailed` (error 9):
transient when the peer could not be reached, timed out or answered 5xx, permanent
when it answered 4xx.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from ..remotes.orthanc_peer import OrthancPeer, parse_peer
from .retry import TransferFailed

GZIP_HEADERS = {"Content-Encoding": "gzip"}
DICOM_HEADERS = {"Content-Type": "application/dicom"}
SERVER_ERROR = 500  # statuses from here on are the peer's trouble, maybe passing


@dataclass(frozen=True)
class PeerTarget:
    """A peer as a transfer reaches it, fixed when the transfer is asked for."""

    peer: OrthancPeer
    timeout: float  # seconds for each wait: the peer's Timeout, else HttpTimeout
    verify: bool  # HttpsVerifyPeers

    def to_json(self) -> dict[str, Any]:
        return {"Peer": self.peer.to_storage(), "Timeout": self.timeout, "Verify": self.verify}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerTarget:
        return cls(parse_peer(data["Peer"]), float(data["Timeout"]), bool(data["Verify"]))


class PeerHttpError(TransferFailed):
    """The peer answered, with an HTTP error status (kept for routes that pass it on)."""

    def __init__(self, details: str, status: int) -> None:
        super().__init__(details, transient=status >= SERVER_ERROR)
        self.status = status


def timed_out(url: str, method: str, path: str, error: BaseException) -> TransferFailed:
    return TransferFailed(f"Timeout was reached: {method} {url}{path} ({error!r})", transient=True)


def unreachable(url: str, error: BaseException) -> TransferFailed:
    return TransferFailed(f"Couldn't connect to the peer at {url}: {error}", transient=True)


def exchange_failed(url: str, error: BaseException) -> TransferFailed:
    return TransferFailed(f"HTTP exchange with {url} failed: {error!r}", transient=True)


def http_error(url: str, method: str, path: str, status: int) -> PeerHttpError:
    return PeerHttpError(f"The peer at {url} answered HTTP {status} to {method} {path}", status)


@functools.cache
def ssl_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per setting for the whole node: building one loads every CA certificate
    (tens of milliseconds), and a context serves any number of connections."""
    return httpx.create_ssl_context(verify=verify)


class PeerClient:
    """One connection pool to one peer; close it with :meth:`aclose` (or ``async with``)."""

    def __init__(self, target: PeerTarget) -> None:
        peer = target.peer
        self.url = peer.url
        self._client = httpx.AsyncClient(
            base_url=peer.url,
            auth=peer.auth(),
            headers=dict(peer.headers),
            timeout=target.timeout,
            verify=ssl_context(target.verify),
        )

    async def __aenter__(self) -> PeerClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The peer's answer, whatever its status; a failure to get one raises (transient)."""
        try:
            return await self._client.request(method, path, **options)
        except httpx.TimeoutException as error:
            raise timed_out(self.url, method, path, error) from error
        except httpx.ConnectError as error:
            raise unreachable(self.url, error) from error
        except httpx.TransportError as error:
            raise exchange_failed(self.url, error) from error

    async def checked(self, method: str, path: str, **options: Any) -> httpx.Response:
        """The peer's answer when it is a success (2xx); a :class:`PeerHttpError` otherwise."""
        response = await self.request(method, path, **options)
        if not response.is_success:
            raise http_error(self.url, method, path, response.status_code)
        return response

    async def post_instance(self, body: bytes, *, gzipped: bool) -> httpx.Response:
        """POST one DICOM file to ``{Url}instances`` (already gzipped if ``gzipped``)."""
        headers = {**DICOM_HEADERS, **(GZIP_HEADERS if gzipped else {})}
        return await self.checked("POST", "instances", content=body, headers=headers)
