"""The web interface: its static files under /ui/, GET / that leads there, and the two calls it
needs that the REST API lacks (the pending queue in worker order, a job's priority).

The files ship inside the package (node/http/static/ui) and are read once, when this module
is imported: they are small, a request never touches the disk, and a name that is not among
them cannot reach any other file. They are plain HTML, CSS and JavaScript modules: nothing to
build, and nothing fetched from another site (the Content-Security-Policy forbids it, so a
slip shows at once in the browser). Orthanc's own pages live under /app/: that prefix is left
free here for the clients that look for them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from quart import Blueprint, Response, request

from ...body_fields import integer
from ...errors import ErrorCode, OrthancError
from ..answers import empty, json_answer, json_body, node

blueprint = Blueprint("ui", __name__)

UI_PREFIX = "/ui/"
INDEX = "index.html"
# The files the interface is made of, by suffix: anything else in the folder is not served.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
# Pages and scripts come from this node only, and talk to it only; images may also be the
# object URLs the scripts make. No frame of another site may embed the pages.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The browser asks again each time (cheap: a 304 while the ETag holds), so that an upgraded
# node never runs with the scripts of the previous version.
CACHE_CONTROL = "no-cache"
# The priorities a user may give a job from the page, as Orthanc's own route accepts any int32.
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(folder: Traversable) -> dict[str, Asset]:
    """Every servable file under ``folder``, by its path relative to it ("js/main.js")."""
    assets: dict[str, Asset] = {}

    def walk(directory: Traversable, prefix: str) -> None:
        for entry in directory.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
                continue
            suffix = "." + entry.name.rpartition(".")[2]
            content_type = CONTENT_TYPES.get(suffix)
            if content_type is not None:
                body = entry.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                assets[prefix + entry.name] = Asset(body, content_type, etag)

    walk(folder, "")
    return assets


ASSETS = load_assets(files("node.http") / "static" / "ui")


def asset_answer(asset: Asset) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Referrer-Policy": "same-origin",
    }
    if asset.etag in request.headers.get("If-None-Match", ""):
        return empty(304, headers)
    return Response(asset.body, content_type=asset.content_type, headers=headers)


@blueprint.route("/", methods=["GET"])
async def root() -> Response:
    """Orthanc sends a browser from / to its explorer with a relative 301: the same, to ours."""
    return empty(301, {"Location": UI_PREFIX.lstrip("/")})


@blueprint.route("/ui", methods=["GET"])
async def ui_without_slash() -> Response:
    """The pages name their files relatively: they must be read from /ui/, not /ui."""
    return empty(301, {"Location": UI_PREFIX})


@blueprint.route(UI_PREFIX, methods=["GET"])
@blueprint.route(f"{UI_PREFIX}<path:name>", methods=["GET"])
async def ui_file(name: str = INDEX) -> Response:
    asset = ASSETS.get(name)
    if asset is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return asset_answer(asset)


@blueprint.route(f"{UI_PREFIX}api/queue", methods=["GET"])
async def pending_queue() -> Response:
    """The IDs of the Pending jobs, the one the next free worker takes first."""
    return json_answer(await node().jobs.pending_ids())


@blueprint.route(f"{UI_PREFIX}api/jobs/<job_id>/priority", methods=["PUT"])
async def job_priority(job_id: str) -> Response:
    """A new priority for a job that has not ended (the body: a JSON integer); {} when done."""
    value = integer(await json_body(), ErrorCode.BAD_FILE_FORMAT, "The priority must be an integer")
    low, high = PRIORITY_RANGE
    if not low <= value <= high:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Priority out of range: {value}")
    if not await node().jobs.reprioritize(job_id, value):
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"No job that has not ended with this id: {job_id}")
    return json_answer({})
