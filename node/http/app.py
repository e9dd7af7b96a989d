"""Builds the quart-trio app (error mapping, the route blueprints) and the ASGI layers in front of it."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ..context import NodeContext
from ..errors import ErrorCode, NoAnswer, OrthancError
from .access import AccessControl
from .answers import empty, error_answer
from .asgi import send_empty
from .compression import compressed
from .fast_path import FastPath
from .instrument import RequestMetrics
from .limits import RequestBody
from .routes import ALL_BLUEPRINTS
from .settings import HttpSettings
from .spool import StreamedUploads, too_large

log = logging.getLogger(__name__)

_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")
_STATIC_PAGES = "/app/"
_OVERRIDES = frozenset({"PUT", "DELETE"})  # the methods a GET or a POST may stand for


class MethodOverride:
    """ASGI wrapper for clients that can only send GET and POST, as Orthanc allows them.

    A POST may carry the method it stands for in ``X-HTTP-Method-Override``, a GET in its
    ``_method`` argument; either names PUT or DELETE (in any case). Any other method
    named there is refused with an empty 400; an empty value changes nothing.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            named = _overriding_method(scope)
            if named:
                method = named.upper()
                if method not in _OVERRIDES:
                    await send_empty(send, 400)
                    return
                scope = {**scope, "method": method}
        await self.app(scope, receive, send)


def _overriding_method(scope: dict) -> str | None:
    """The method a POST (by header) or a GET (by URL argument) asks to stand for, if any."""
    if scope.get("method") == "POST":
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-http-method-override":
                return str(value.decode("latin-1").strip())
    elif scope.get("method") == "GET" and b"_method" in scope.get("query_string", b""):
        for value in parse_qs(scope.get("query_string", b"").decode("latin-1")).get("_method", []):
            return value.strip()
    return None


def _warn_if_open(settings: HttpSettings) -> None:
    """Say loudly at start when anyone who reaches the port can use the node."""
    if not settings.remote_access_allowed:
        return
    if not settings.authentication_enabled:
        log.warning(
            "INSECURE: RemoteAccessAllowed is true and AuthenticationEnabled false: anyone who can reach "
            "the HTTP port has full access, patient data included"
        )
    elif not settings.registered_users:
        log.warning(
            "INSECURE: RemoteAccessAllowed is true and RegisteredUsers is empty: the default user "
            "orthanc / orthanc is accepted. Declare your own users in RegisteredUsers"
        )


def create_app(context: NodeContext) -> QuartTrio:
    app = QuartTrio("node")
    settings = context.settings.http
    app.config["NODE_CONTEXT"] = context
    app.config["MAX_CONTENT_LENGTH"] = settings.maximum_request_size
    # Archives stream for as long as they need; uploads may be slow: no silent cut-offs.
    app.config["BODY_TIMEOUT"] = None
    app.config["RESPONSE_TIMEOUT"] = None
    app.url_map.strict_slashes = False
    _warn_if_open(settings)

    if settings.compression_enabled:

        @app.after_request
        async def compress(response: Response) -> Response:
            return await compressed(response, request.headers.get("Accept-Encoding", ""))

    @app.errorhandler(OrthancError)
    async def on_orthanc_error(error: OrthancError) -> Response:
        log.info("%s %s -> %s %s", request.method, request.path, error.code.name, error.details)
        return error_answer(error)

    @app.errorhandler(NoAnswer)
    async def on_no_answer(_: NoAnswer) -> Response:
        return empty(400 if request.method == "POST" else 404)

    @app.errorhandler(MethodNotAllowed)
    async def on_wrong_method(error: MethodNotAllowed) -> Response:
        allowed = [m for m in _METHOD_ORDER if m in (error.valid_methods or [])]
        return empty(405, {"Allow": ",".join(allowed)})

    @app.errorhandler(NotFound)
    async def on_unknown_route(_: NotFound) -> Response:
        # Orthanc's error 17 for an unknown URI (WebDAV's included: it is not served), but for
        # its static pages under /app/, which answer an empty 404.
        if request.path.startswith(_STATIC_PAGES):
            return empty(404)
        return error_answer(OrthancError(ErrorCode.UNKNOWN_RESOURCE))

    @app.errorhandler(RequestEntityTooLarge)
    async def on_too_large(_: RequestEntityTooLarge) -> Response:
        log.warning("%s %s: body over MaximumRequestSize", request.method, request.path)
        return error_answer(too_large(app.config["MAX_CONTENT_LENGTH"]))

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        return empty(error.code or 500)

    @app.errorhandler(Exception)
    async def on_bug(_: Exception) -> Response:
        # What failed, and where, is for the log: its text can name files, the OS or the database.
        log.exception("internal error on %s %s", request.method, request.path)
        return error_answer(OrthancError(ErrorCode.INTERNAL_ERROR))

    for blueprint in ALL_BLUEPRINTS:
        app.register_blueprint(blueprint)
    limit = app.config["MAX_CONTENT_LENGTH"]
    # Outermost first; every request passes each of these once, whether the fast path or the app answers it.
    routes = FastPath(StreamedUploads(app.asgi_app), context)
    wrapped = RequestBody(MethodOverride(AccessControl(routes, settings)), limit, settings.describe_errors)
    app.asgi_app = RequestMetrics(wrapped, context.metrics)  # type: ignore[method-assign]
    return app
