"""One remote Orthanc (or compatible) node, reached over its REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ErrorCode, OrthancError
from .json_fields import malformed, unsigned_field

_SCHEMES = ("http://", "https://")
_ARRAY_FORM_LENGTHS = (1, 3)  # [Url] or [Url, Username, Password]
#: Keys of the object form with a meaning of their own; any other key is a user-defined property,
#: kept and shown with the peer. The client-certificate keys are accepted and not used (no client TLS).
_KNOWN_KEYS = frozenset(
    {
        "Url",
        "URL",
        "Username",
        "Password",
        "HttpHeaders",
        "Pkcs11",
        "Timeout",
        "CertificateFile",
        "CertificateKeyFile",
        "CertificateKeyPassword",
    }
)


@dataclass(frozen=True)
class OrthancPeer:
    url: str  # always ends with "/"
    username: str | None = None  # None: no credentials (an empty user name means none)
    password: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request, in name order
    timeout: int = 0  # seconds; 0 means HttpTimeout
    pkcs11: bool = False
    properties: tuple[tuple[str, str], ...] = ()  # user-defined, in name order

    def to_json(self) -> dict[str, Any]:
        """The public object of GET /peers/{id}/configuration: header names only, the password never."""
        answer: dict[str, Any] = {
            "HttpHeaders": [name for name, _ in self.headers],
            "Pkcs11": self.pkcs11,
            "Timeout": self.timeout,
            "Url": self.url,
            **dict(self.properties),
        }
        if self.username is not None:
            answer["Username"] = self.username
            answer["Password"] = None
        return dict(sorted(answer.items()))

    def to_storage(self) -> dict[str, Any]:
        """Everything needed to rebuild the peer (credentials included), in the object form: what the
        index and saved jobs keep."""
        stored: dict[str, Any] = {
            **dict(self.properties),
            "Url": self.url,
            "HttpHeaders": dict(self.headers),
            "Pkcs11": self.pkcs11,
            "Timeout": self.timeout,
        }
        if self.username is not None:
            stored["Username"], stored["Password"] = self.username, self.password or ""
        return stored

    def auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials, when the peer has some."""
        return None if self.username is None else (self.username, self.password or "")

    def http_timeout(self, default: float) -> float:
        return float(self.timeout or default)


def _as_text(value: Any) -> str | None:
    """A JSON scalar read as text, as the configuration reader of Orthanc does: strings as they
    are, integers and booleans written out, null as empty; None for anything else."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return None


def _url(url: str) -> str:
    if "://" in url and not url.startswith(_SCHEMES):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Bad URL: {url}")
    if not url:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Empty URL")
    return url if url.endswith("/") else url + "/"


def _from_array(value: list[Any]) -> OrthancPeer:
    texts = [_as_text(item) for item in value]
    if len(texts) not in _ARRAY_FORM_LENGTHS or None in texts:
        raise malformed()
    url = _url(texts[0] or "")
    if len(texts) == 1:
        return OrthancPeer(url)
    username, password = texts[1], texts[2]
    return OrthancPeer(url, username, password) if username else OrthancPeer(url)


def _optional_string(value: dict[str, Any], name: str) -> str | None:
    if name not in value:
        return None
    if not isinstance(value[name], str):
        raise malformed()
    return value[name]


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise malformed()
    return tuple(sorted(value.items()))


def _property_text(value: Any) -> str | None:
    """A user-defined property as text: strings as they are, integers written out, booleans as
    1 or 0 (as Orthanc writes them there); None for anything else."""
    if isinstance(value, bool):
        return str(int(value))
    return str(value) if isinstance(value, (str, int)) else None


def _properties(value: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    properties = []
    for name in sorted(set(value) - _KNOWN_KEYS):
        text = _property_text(value[name])
        if text is None:
            raise OrthancError(
                ErrorCode.BAD_FILE_FORMAT,
                f"User-defined properties associated with a Web service must be strings: {name}",
            )
        properties.append((name, text))
    return tuple(properties)


def _from_object(value: dict[str, Any]) -> OrthancPeer:
    """Checked in a fixed order (URL, credentials, options, user properties, timeout), so that a
    body with several faults gets the same error as from Orthanc."""
    url = value["Url"] if "Url" in value else value.get("URL", "")
    if not isinstance(url, str):
        raise malformed()
    url = _url(url)
    username = _optional_string(value, "Username") or None
    password = _optional_string(value, "Password")
    if password is not None and username is None:
        raise malformed()
    pkcs11 = value.get("Pkcs11", False)
    if not isinstance(pkcs11, bool):
        raise malformed()
    headers = _headers(value.get("HttpHeaders", {}))
    properties = _properties(value)
    return OrthancPeer(
        url=url,
        username=username,
        password=password,
        headers=headers,
        timeout=unsigned_field(value, "Timeout"),
        pkcs11=pkcs11,
        properties=properties,
    )


def parse_peer(value: Any) -> OrthancPeer:
    """A peer in either form of the configuration (array or object); Orthanc's errors otherwise."""
    if isinstance(value, list):
        return _from_array(value)
    if isinstance(value, dict):
        return _from_object(value)
    raise malformed()
