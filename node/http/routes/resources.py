"""Browsing and deleting patients, studies, series and instances."""

from __future__ import annotations

import re

from quart import Blueprint, Response, request

from ...dicom.ids import Level
from ...errors import ErrorCode, NoAnswer, OrthancError
from ...units import MEGABYTE
from ..answers import boolean_body, flag, json_answer, node, tag_format, text_answer

blueprint = Blueprint("resources", __name__)

_LEVEL_PATHS = "<any(patients, studies, series, instances):plural>"
# The script by which Orthanc's plugins extend its Explorer: there is none to run here.
EXPLORER_EXTENSIONS = "explorer.js"


# Orthanc reads since and limit as 32-bit signed integers.
_INT32 = 2**31
_INTEGER = re.compile(r"-?[0-9]+")


def _paging_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    text = value.strip()
    if not _INTEGER.fullmatch(text) or not -_INT32 <= int(text) < _INT32:
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, "Syntax error in some user-supplied data")
    return int(text)


@blueprint.route(f"/{_LEVEL_PATHS}", methods=["GET"])
async def list_resources(plural: str) -> Response:
    level = Level.from_plural(plural)
    since, limit = _paging_arg("since"), _paging_arg("limit")
    if (since is None) != (limit is None):
        missing = "limit" if limit is None else "since"
        # Orthanc names the route here by its path components, each followed by a slash.
        raise OrthancError(ErrorCode.BAD_REQUEST, f'Missing "{missing}" argument for GET request against: /{plural}/')
    # As Orthanc: limit=0 lists nothing, a negative limit everything, a negative since starts at the first.
    paged = limit is not None and limit >= 0
    ids = await node().index.list_ids(level, max(0, since or 0), limit if paged else None)
    if flag("expand"):
        return json_answer(await node().resources.many_json(ids, tag_format()))
    return json_answer(ids)


@blueprint.route(f"/{_LEVEL_PATHS}/<public_id>", methods=["GET"])
async def get_resource(plural: str, public_id: str) -> Response:
    level = Level.from_plural(plural)
    record = await node().index.resource(public_id, level)
    if record is None:
        raise NoAnswer()
    return json_answer(await node().resources.to_json(record, tag_format()))


@blueprint.route(f"/{_LEVEL_PATHS}/<public_id>", methods=["DELETE"])
async def delete_resource(plural: str, public_id: str) -> Response:
    answer = await node().resources.delete(public_id, Level.from_plural(plural))
    if answer is None:
        raise NoAnswer()
    return json_answer(answer)


_CHILD_ROUTES = {
    ("patients", "studies"), ("patients", "series"), ("patients", "instances"),
    ("studies", "series"), ("studies", "instances"), ("series", "instances"),
}  # fmt: skip
_PARENT_ROUTES = {
    ("studies", "patient"), ("series", "study"), ("series", "patient"),
    ("instances", "series"), ("instances", "study"), ("instances", "patient"),
}  # fmt: skip
_SINGULAR = {"patient": Level.PATIENT, "study": Level.STUDY, "series": Level.SERIES}


async def _require(public_id: str, level: Level) -> None:
    if not await node().resources.exists(public_id, level):
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")


@blueprint.route("/<any(patients, studies, series):plural>/<public_id>/<any(studies, series, instances):child>")
async def children(plural: str, public_id: str, child: str) -> Response:
    if (plural, child) not in _CHILD_ROUTES:
        raise NoAnswer()
    await _require(public_id, Level.from_plural(plural))
    ids = await node().index.descendants(public_id, Level.from_plural(child))
    # Child lists are always expanded in 1.10.1.
    return json_answer(await node().resources.many_json(ids, tag_format()))


@blueprint.route("/<any(studies, series, instances):plural>/<public_id>/<any(patient, study, series):parent>")
async def parent(plural: str, public_id: str, parent: str) -> Response:
    if (plural, parent) not in _PARENT_ROUTES:
        raise NoAnswer()
    level = Level.from_plural(plural)
    record = await node().resources.get(public_id, level)
    target = _SINGULAR[parent]
    while record.level > target and record.parent is not None:
        record = await node().resources.get(record.parent)
    return json_answer(await node().resources.to_json(record, tag_format()))


@blueprint.route(f"/{_LEVEL_PATHS}/<public_id>/statistics")
async def resource_statistics(plural: str, public_id: str) -> Response:
    level = Level.from_plural(plural)
    stats = await node().index.resource_statistics(public_id, level)
    if not stats:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
    answer: dict[str, object] = {}
    for key, value in stats.items():
        if key.startswith("Count"):
            answer[key] = value
        else:
            answer[key] = str(value)
            answer[f"{key}MB"] = value // MEGABYTE
    return json_answer(answer)


@blueprint.route("/patients/<public_id>/protected", methods=["GET", "PUT"])
async def protected(public_id: str) -> Response:
    """Orthanc reads the body before it looks the patient up, and answers an unknown patient
    here with error 3 (out of range), not 17."""
    value = await boolean_body() if request.method == "PUT" else None
    if not await node().resources.exists(public_id, Level.PATIENT):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown patient: {public_id}")
    if value is None:
        return text_answer("1" if await node().index.is_protected(public_id) else "0")
    await node().index.set_protected(public_id, value)
    return text_answer("")


@blueprint.route(f"/{_LEVEL_PATHS}/<public_id>/reconstruct", methods=["POST"])
async def reconstruct(plural: str, public_id: str) -> Response:
    """Main DICOM tags of the resource and of those around it read again from its instances' files."""
    level = Level.from_plural(plural)
    await _require(public_id, level)
    await node().ingest.reconstruct(await node().index.descendants(public_id, Level.INSTANCE))
    return text_answer("")


@blueprint.route("/plugins")
async def plugins() -> Response:
    """No plugin runs here; Orthanc lists its Explorer's extension script even then."""
    return json_answer([EXPLORER_EXTENSIONS])


@blueprint.route(f"/plugins/{EXPLORER_EXTENSIONS}")
async def explorer_extensions() -> Response:
    return text_answer("// No plugin extends Orthanc Explorer here.\n", "application/javascript")
