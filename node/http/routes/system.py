"""/system, /statistics and /changes."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from ... import ORTHANC_API_VERSION, ORTHANC_VERSION, PRODUCT_NAME, __version__
from ...context import NodeContext
from ...units import MEGABYTE
from ..answers import flag, json_answer, node, text_answer

blueprint = Blueprint("system", __name__)


def system_info(context: NodeContext) -> dict[str, Any]:
    """The answer of GET /system (served by the fast path; the route below serves HEAD)."""
    settings = context.settings
    ports = context.ports
    return {
        "ApiVersion": ORTHANC_API_VERSION,
        "CheckRevisions": settings.check_revisions,
        "DatabaseBackendPlugin": None,
        "DatabaseVersion": 6,
        "DicomAet": settings.dicom.aet,
        "DicomPort": ports.get("dicom", settings.dicom.port),
        "HttpPort": ports.get("http", settings.http.port),
        "IsHttpServerSecure": settings.http.is_secure,
        "Name": settings.name,
        "PluginsEnabled": False,
        "StorageAreaPlugin": None,
        "Version": ORTHANC_VERSION,
        "Product": {"Name": PRODUCT_NAME, "Version": __version__},
    }


@blueprint.route("/system")
async def system() -> Response:
    return json_answer(system_info(node()))


@blueprint.route("/statistics")
async def statistics() -> Response:
    stats = await node().index.statistics()
    return json_answer(
        {
            "CountInstances": stats["CountInstances"],
            "CountPatients": stats["CountPatients"],
            "CountSeries": stats["CountSeries"],
            "CountStudies": stats["CountStudies"],
            "TotalDiskSize": str(stats["DiskSize"]),
            "TotalDiskSizeMB": stats["DiskSize"] // MEGABYTE,
            "TotalUncompressedSize": str(stats["UncompressedSize"]),
            "TotalUncompressedSizeMB": stats["UncompressedSize"] // MEGABYTE,
        }
    )


# Changes a single /changes answer lists at most, whatever its limit.
MAX_CHANGES = 10_000
DEFAULT_CHANGES = 100


def _lenient_int(name: str, default: int) -> int:
    """/changes takes a malformed argument for its default, as Orthanc does."""
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _change_json(change: Any) -> dict[str, object]:
    """One entry of the log (a Change of the index)."""
    return {
        "ChangeType": change.change_type,
        "Date": change.date,
        "ID": change.public_id,
        "Path": f"/{change.level.plural}/{change.public_id}",
        "ResourceType": change.level.title,
        "Seq": change.seq,
    }


@blueprint.route("/changes", methods=["GET", "DELETE"])
async def changes() -> Response:
    """The log of changes. "Last" is the highest number ever given when the answer lists none:
    the changes of deleted resources leave the log, their numbers are never given again."""
    index = node().index
    if request.method == "DELETE":
        await index.clear_changes()
        return text_answer("")
    if flag("last"):
        last = await index.last_change()
        items, done = ([last] if last else []), True
    else:
        since = max(0, _lenient_int("since", 0))
        limit = _lenient_int("limit", DEFAULT_CHANGES)
        # A negative limit lists nothing and says so with Done (Orthanc's answer).
        items, done = await index.changes(since, min(limit, MAX_CHANGES)) if limit >= 0 else ([], True)
    last_seq = items[-1].seq if items else await index.last_seq()
    return json_answer({"Changes": [_change_json(c) for c in items], "Done": done, "Last": last_seq})


@blueprint.route("/exports", methods=["GET", "DELETE"])
async def exports() -> Response:
    if request.method == "DELETE":
        return text_answer("")
    return json_answer({"Exports": [], "Done": True, "Last": 0})
