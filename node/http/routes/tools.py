"""/tools: clock, UID generation, run-time settings, local find and lookup."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

from pydicom.uid import generate_uid
from quart import Blueprint, Response, request

from ...clock import orthanc_date
from ...context import Lifecycle
from ...dicom.encodings import encoding_name
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...nesting import load_json
from ...net.scp import accepted_transfer_syntaxes
from ...services.find import Finder, parse_find_request
from ..answers import body_bytes, body_text, boolean_body, empty, json_answer, node, text_answer

blueprint = Blueprint("tools", __name__)

# The index Orthanc 1.10.1 answers on GET /tools.
TOOLS = [
    "accepted-transfer-syntaxes", "bulk-anonymize", "bulk-content", "bulk-delete", "bulk-modify",
    "create-archive", "create-dicom", "create-media", "create-media-extended", "default-encoding",
    "dicom-conformance", "dicom-echo", "execute-script", "find", "generate-uid", "invalidate-tags",
    "log-level", "log-level-dicom", "log-level-generic", "log-level-http", "log-level-jobs",
    "log-level-lua", "log-level-plugins", "log-level-sqlite", "lookup", "metrics", "metrics-prometheus",
    "now", "now-local", "reconstruct", "reset", "shutdown", "unknown-sop-class-accepted",
]  # fmt: skip


@blueprint.route("/tools")
async def tools_index() -> Response:
    return json_answer(TOOLS)


@blueprint.route("/tools/now")
async def now() -> Response:
    return text_answer(orthanc_date())


@blueprint.route("/tools/now-local")
async def now_local() -> Response:
    return text_answer(datetime.now().strftime("%Y%m%dT%H%M%S"))


@blueprint.route("/tools/generate-uid")
async def generate_uid_route() -> Response:
    """Orthanc names patients with a UUID and the other levels with a DICOM UID."""
    level = request.args.get("level", "")
    if level == "patient":
        return text_answer(str(uuid.uuid4()))
    if level in ("study", "series", "instance"):
        return text_answer(generate_uid())
    raise NoAnswer()


@blueprint.route("/tools/execute-script", methods=["POST"])
async def execute_script() -> Response:
    if not node().settings.http.execute_lua_enabled:
        return empty(403)
    raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "Lua scripts are not supported by this server")


@blueprint.route("/tools/default-encoding", methods=["GET", "PUT"])
async def default_encoding() -> Response:
    runtime = node().runtime
    await node().shared.refresh()
    if request.method == "PUT":
        name = encoding_name(await body_text())
        if name is None:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
        runtime.default_encoding = name
        await node().shared.publish()
    return text_answer(runtime.default_encoding)


def _uid_order(uid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in uid.split(".") if part.isdigit())


def _transfer_syntax_patterns(body: str) -> list[str]:
    """A JSON array of patterns, a JSON string, or one plain-text pattern."""
    try:
        value = load_json(body)
    except json.JSONDecodeError:  # nested too deeply included
        return [body.strip()]
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise OrthancError(ErrorCode.BAD_FILE_FORMAT)


@blueprint.route("/tools/accepted-transfer-syntaxes", methods=["GET", "PUT"])
async def transfer_syntaxes() -> Response:
    """Changes apply to the next associations of the C-STORE SCP."""
    runtime = node().runtime
    await node().shared.refresh()
    if request.method == "PUT":
        runtime.accepted_transfer_syntaxes = _transfer_syntax_patterns(await body_text())
        await node().shared.publish()
    syntaxes = accepted_transfer_syntaxes(runtime.accepted_transfer_syntaxes)
    return json_answer(sorted(syntaxes, key=_uid_order))


@blueprint.route("/tools/unknown-sop-class-accepted", methods=["GET", "PUT"])
async def unknown_sop_class_accepted() -> Response:
    runtime = node().runtime
    await node().shared.refresh()
    if request.method == "PUT":
        runtime.unknown_sop_class_accepted = await boolean_body()
        await node().shared.publish()
        return text_answer("")
    return text_answer("1" if runtime.unknown_sop_class_accepted else "0")


# Orthanc's log categories and the loggers that play their part here.
_LOG_CATEGORIES: dict[str, tuple[str, ...]] = {
    "generic": ("node",),
    "http": ("node.http", "hypercorn"),
    "dicom": ("node.net", "pynetdicom"),
    "jobs": ("node.jobs",),
    "sqlite": ("node.storage",),
    # Nothing runs Lua or plugins here: their loggers only keep the level a client sets.
    "lua": ("node.lua",),
    "plugins": ("node.plugins",),
}
_VERBOSITY = {"default": logging.WARNING, "verbose": logging.INFO, "trace": logging.DEBUG}


def _verbosity(loggers: tuple[str, ...]) -> str:
    level = logging.getLogger(loggers[0]).getEffectiveLevel()
    return "trace" if level <= logging.DEBUG else "verbose" if level <= logging.INFO else "default"


async def _log_level(loggers: tuple[str, ...]) -> Response:
    if request.method == "PUT":
        text = await body_text()
        if text not in _VERBOSITY:
            raise OrthancError(
                ErrorCode.PARAMETER_OUT_OF_RANGE, f'Verbosity can be "default", "verbose" or "trace": {text}'
            )
        for name in loggers:
            logging.getLogger(name).setLevel(_VERBOSITY[text])
        return text_answer("")
    return text_answer(_verbosity(loggers))


@blueprint.route("/tools/log-level", methods=["GET", "PUT"])
async def log_level() -> Response:
    return await _log_level(tuple(name for names in _LOG_CATEGORIES.values() for name in names))


@blueprint.route(
    "/tools/log-level-<any(generic, http, dicom, jobs, sqlite, lua, plugins):category>", methods=["GET", "PUT"]
)
async def log_level_category(category: str) -> Response:
    return await _log_level(_LOG_CATEGORIES[category])


def _finder() -> Finder:
    return Finder(node().index, node().resources)


@blueprint.route("/tools/find", methods=["POST"])
async def find() -> Response:
    find_request = parse_find_request(await body_bytes())
    return json_answer(await _finder().answer(find_request))


@blueprint.route("/tools/lookup", methods=["POST"])
async def lookup() -> Response:
    return json_answer(await _finder().lookup(await body_text()))


def _then(action: str) -> Response:
    """Orthanc's ``{}``, and once it is sent, the node resets or shuts down."""
    lifecycle = node().lifecycle

    async def body() -> AsyncIterator[bytes]:
        yield b"{}"
        lifecycle.request(action)  # runs once the answer's bytes went out

    return Response(body(), content_type="application/json", headers={"Content-Length": "2"})


@blueprint.route("/tools/reset", methods=["POST"])
async def reset() -> Response:
    """Stop, read the configuration files again and start again (in-process: the same configuration)."""
    return _then(Lifecycle.RESET)


@blueprint.route("/tools/shutdown", methods=["POST"])
async def shutdown() -> Response:
    return _then(Lifecycle.SHUTDOWN)


@blueprint.route("/tools/reconstruct", methods=["POST"])
async def reconstruct_all() -> Response:
    """Main DICOM tags of every resource read again from the files (the body, if any, is ignored, as in 1.10.1)."""
    await node().ingest.reconstruct_all()
    return text_answer("")
