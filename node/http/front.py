"""What every HTTP request passes once, in front of the routes: one ASGI callable.

In this order: the REST metrics (active requests, durations), the request body's
rules (limits.py: its size limit, and what becomes of it after an early answer), the
method override, access control (access.py); then the fast path (fast_path.py) or
the Quart app answers. Being one callable rather than a wrapper per rule, a request
costs one call and one scan of its headers per rule, and a request without a body
goes through with the server's own receive and send.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from ..metrics import Metrics
from .access import AccessControl
from .asgi import App, Message, Receive, Send, send_empty
from .limits import RequestBody
from .settings import HttpSettings

_OVERRIDES = frozenset({"PUT", "DELETE"})  # the methods a GET or a POST may stand for
_BAD_OVERRIDE = 400


def _overriding_method(scope: Message) -> str | None:
    """The method a POST (by header) or a GET (by URL argument) asks to stand for, if any.

    Clients that can only send GET and POST may name PUT or DELETE there (in any case), as
    Orthanc allows them; an empty value changes nothing.
    """
    method = scope["method"]
    if method == "POST":
        for name, value in scope["headers"]:
            if name.lower() == b"x-http-method-override":
                return str(value.decode("latin-1").strip())
    elif method == "GET" and b"_method" in scope["query_string"]:
        for value in parse_qs(scope["query_string"].decode("latin-1")).get("_method", []):
            return value.strip()
    return None


class RequestFront:
    """The ASGI app the server runs: every HTTP request through the rules above, then to
    ``routes``; anything else (the lifespan) straight to ``routes``."""

    def __init__(self, routes: Any, metrics: Metrics, settings: HttpSettings, limit_bytes: int) -> None:
        self.routes = routes
        self._metrics = metrics
        self._body = RequestBody(limit_bytes, settings.describe_errors)
        self._access = AccessControl(settings)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.routes(scope, receive, send)
            return
        self._metrics.request_started()
        start = time.perf_counter()
        try:
            await self._body.serve(scope, receive, send, self._checked)
        finally:
            self._metrics.request_finished(scope["method"], time.perf_counter() - start)

    async def _checked(self, scope: Message, receive: Receive, send: Send) -> None:
        """The method override and access control, then the routes."""
        named = _overriding_method(scope)
        if named:
            method = named.upper()
            if method not in _OVERRIDES:
                await send_empty(send, _BAD_OVERRIDE)
                return
            scope = {**scope, "method": method}
        if await self._access.refused(scope, send):
            return
        routes: App = self.routes
        await routes(scope, receive, send)
