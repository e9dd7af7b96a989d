"""Builds the quart-trio app (error mapping, the route blueprints) and the ASGI layers in front of it."""

from __future__ import annotations

import logging

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ..context import NodeContext
from ..errors import ErrorCode, NoAnswer, OrthancError
from .answers import empty, error_answer
from .compression import compressed
from .fast_path import FastPath
from .front import RequestFront
from .routes import ALL_BLUEPRINTS
from .settings import HttpSettings
from .spool import StreamedUploads, too_large

log = logging.getLogger(__name__)

_METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")
_STATIC_PAGES = "/app/"


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
    # Every request passes the front once, whether the fast path or the app answers it.
    routes = FastPath(StreamedUploads(app.asgi_app), context)
    front = RequestFront(routes, context.metrics, settings, app.config["MAX_CONTENT_LENGTH"])
    app.asgi_app = front  # type: ignore[method-assign,assignment]
    return app
