"""Who may use the REST API: remote access, credentials and cross-site requests, for every route.

Checked once per request in front of every route (the fast path's and Quart's alike), so
that no route can be served without it.
"""

from __future__ import annotations

import base64
import hmac
import logging
from urllib.parse import urlsplit

from ..errors import ErrorCode, OrthancError
from .asgi import Message, Send, client_address, header, request_path, send_empty, send_error
from .settings import HttpSettings

log = logging.getLogger(__name__)

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_UNAUTHORIZED_HEADERS = [(b"www-authenticate", b'Basic realm="Orthanc Secure Area"')]
_UNAUTHORIZED = 401
_STATE_CHANGING = frozenset({"POST", "PUT", "DELETE"})


def _credentials_ok(value: str, users: dict[str, bytes]) -> bool:
    if not value.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(value[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    expected = users.get(user)
    # In constant time, and a comparison even for an unknown user: timing tells nothing about a password.
    matches = hmac.compare_digest(password.encode("utf-8"), expected if expected is not None else b"")
    return expected is not None and matches


def _same_origin(origin: str, hosts: list[str]) -> bool:
    """Whether a browser's Origin header names this server, as the client reached it."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and any(parts.netloc.lower() == host.lower() for host in hosts if host)


def _cross_site(scope: Message) -> OrthancError | None:
    """The refusal of a state-changing request sent by a web page of another site.

    Browsers say which site a page comes from in Origin; a form on another site can
    post to the node but cannot hide that header, nor set any other. Clients that
    are not browsers (curl, pyorthanc, modalities' software) send no Origin and pass.
    Behind a reverse proxy that rewrites Host, the client's host is X-Forwarded-Host.
    """
    origin = header(scope, b"origin")
    if scope["method"] not in _STATE_CHANGING or origin is None:
        return None
    forwarded = (header(scope, b"x-forwarded-host") or "").split(",")[0].strip()
    if _same_origin(origin, [header(scope, b"host") or "", forwarded]):
        return None
    log.warning(
        "%s %s refused: sent from the web page of another site (%s)", scope["method"], request_path(scope), origin
    )
    return OrthancError(ErrorCode.BAD_REQUEST, f"Cross-site request refused (Origin: {origin})", status=403)


class AccessControl:
    """401 for a remote client when remote access is off, or without valid credentials when
    authentication is on; 403 for a cross-site request."""

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings
        self._users = {name: password.encode("utf-8") for name, password in settings.accepted_users.items()}

    async def refused(self, scope: Message, send: Send) -> bool:
        """Whether the request is refused, its answer then sent."""
        settings = self._settings
        if not settings.remote_access_allowed and client_address(scope) not in _LOOPBACK:
            await send_empty(send, _UNAUTHORIZED, _UNAUTHORIZED_HEADERS)
            return True
        if settings.authentication_enabled and not _credentials_ok(header(scope, b"authorization") or "", self._users):
            await send_empty(send, _UNAUTHORIZED, _UNAUTHORIZED_HEADERS)
            return True
        refusal = _cross_site(scope)
        if refusal is not None:
            await send_error(send, refusal, scope["method"], request_path(scope), settings.describe_errors)
            return True
        return False
