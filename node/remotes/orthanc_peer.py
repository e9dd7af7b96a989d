"""One remote Orthanc (or compatible) node, reached over its REST API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..body_fields import integer, string
from ..errors import ErrorCode, OrthancError

_SCHEMES = ("http://", "https://")
_ARRAY_FORM_LENGTHS = (1, 3)  # [Url] or [Url, Username, Password]
_UNSIGNED_TIMEOUT = "Unsigned integer value expected in field: Timeout"


@dataclass(frozen=True)
class OrthancPeer:
    url: str  # always ends with "/"
    username: str | None = None
    password: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=())
    timeout: int = 0  # seconds; 0 means HttpTimeout
    pkcs11: bool = False

    def to_json(self) -> dict[str, Any]:
        """The public object of GET /peers/{id}/configuration: header names only, the password never."""
        answer: dict[str, Any] = {
            "HttpHeaders": [name for name, _ in self.headers],
            "Pkcs11": self.pkcs11,
            "Timeout": self.timeout,
            "Url": self.url,
        }
        if self.username is not None:
            answer["Username"] = self.username
            answer["Password"] = None
        return dict(sorted(answer.items()))

    def auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials, when the peer has some."""
        return None if self.username is None else (self.username, self.password or "")

    def http_timeout(self, default: float) -> float:
        return float(self.timeout or default)


def _url(value: Any) -> str:
    url = string(value, ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Url")
    if not url.startswith(_SCHEMES):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Bad URL: {url}")
    return url if url.endswith("/") else url + "/"


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The HTTP headers of an Orthanc peer must map names to strings")
    return tuple((str(name), text) for name, text in value.items())


def parse_peer(value: Any) -> OrthancPeer:
    """A peer in either form of the configuration (array or object); Orthanc's errors otherwise."""
    if isinstance(value, list):
        if len(value) not in _ARRAY_FORM_LENGTHS or not all(isinstance(item, str) for item in value):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
        if len(value) == 1:
            return OrthancPeer(_url(value[0]))
        return OrthancPeer(_url(value[0]), value[1], value[2])
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
    url = value.get("Url", value.get("URL"))
    username = value.get("Username")
    if username is not None:
        username = string(username, ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Username")
    password = value.get("Password")
    if password is not None:
        password = string(password, ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Password")
    timeout = integer(value.get("Timeout", 0), ErrorCode.BAD_FILE_FORMAT, _UNSIGNED_TIMEOUT)
    if timeout < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, _UNSIGNED_TIMEOUT)
    return OrthancPeer(
        url=_url(url),
        username=username,
        password=password,
        headers=_headers(value.get("HttpHeaders", {})),
        timeout=timeout,
        pkcs11=bool(value.get("Pkcs11", False)),
    )


def peer_to_storage(peer: OrthancPeer) -> dict[str, Any]:
    """Everything needed to rebuild the peer (credentials included), for the index."""
    stored: dict[str, Any] = {"Url": peer.url, "HttpHeaders": dict(peer.headers), "Timeout": peer.timeout}
    if peer.username is not None:
        stored["Username"], stored["Password"] = peer.username, peer.password or ""
    return stored
