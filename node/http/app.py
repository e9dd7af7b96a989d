"""Builds the quart-trio app: error mapping, access control and the route blueprints."""

from __future__ import annotations

import base64
import logging
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ..context import NodeContext
from ..errors import ErrorCode, NoAnswer, OrthancError
from .answers import empty, error_answer
from .instrument import RequestMetrics
from .limits import BodyLimit
from .routes import ALL_BLUEPRINTS

log = logging.getLogger(__name__)

_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'}


class MethodOverride:
    """ASGI wrapper honouring X-HTTP-Method-Override on POST, as Orthanc does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "POST":
            for name, value in scope.get("headers", []):
                if name.lower() == b"x-http-method-override":
                    method = value.decode("latin-1").strip().upper()
                    if method in _METHOD_ORDER:
                        scope = {**scope, "method": method}
                    break
        await self.app(scope, receive, send)


def _credentials_ok(header: str, users: dict[str, str]) -> bool:
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return users.get(user) == password


def create_app(context: NodeContext) -> QuartTrio:
    app = QuartTrio("node")
    config = context.config
    app.config["NODE_CONTEXT"] = context
    app.config["MAX_CONTENT_LENGTH"] = int(config["MaximumRequestSize"]) * 1024 * 1024
    # Archives stream for as long as they need; uploads may be slow: no silent cut-offs.
    app.config["BODY_TIMEOUT"] = None
    app.config["RESPONSE_TIMEOUT"] = None
    app.url_map.strict_slashes = False
    users = config.registered_users

    @app.before_request
    async def access_control() -> Response | None:
        remote = request.remote_addr or ""
        if not config["RemoteAccessAllowed"] and remote not in _LOOPBACK:
            return Response(b"", status=401, headers=_UNAUTHORIZED_HEADERS)
        if config.authentication_enabled and not _credentials_ok(request.headers.get("Authorization", ""), users):
            return Response(b"", status=401, headers=_UNAUTHORIZED_HEADERS)
        return None

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
        return Response(b"", status=405, headers={"Allow": ",".join(allowed)})

    @app.errorhandler(NotFound)
    async def on_unknown_route(_: NotFound) -> Response:
        return empty(404)

    @app.errorhandler(RequestEntityTooLarge)
    async def on_too_large(_: RequestEntityTooLarge) -> Response:
        limit = config["MaximumRequestSize"]
        log.warning("%s %s: body over MaximumRequestSize (%s MB)", request.method, request.path, limit)
        return error_answer(
            OrthancError(ErrorCode.BAD_REQUEST, f"The request body exceeds MaximumRequestSize ({limit} MB)", status=413)
        )

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        return empty(error.code or 500)

    @app.errorhandler(Exception)
    async def on_bug(error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        return error_answer(OrthancError(ErrorCode.INTERNAL_ERROR, f"{type(error).__name__}: {error}"))

    for blueprint in ALL_BLUEPRINTS:
        app.register_blueprint(blueprint)
    limit = app.config["MAX_CONTENT_LENGTH"]
    wrapped = BodyLimit(MethodOverride(app.asgi_app), limit, config["HttpDescribeErrors"])
    app.asgi_app = RequestMetrics(wrapped, context.metrics)  # type: ignore[method-assign]
    return app
