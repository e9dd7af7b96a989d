"""/system, /statistics and /changes."""

from __future__ import annotations

from quart import Blueprint, Response, request

from ... import ORTHANC_API_VERSION, ORTHANC_VERSION, PRODUCT_NAME, __version__
from ...units import MEGABYTE
from ..answers import empty, flag, int_arg, json_answer, node

blueprint = Blueprint("system", __name__)


@blueprint.route("/system")
async def system() -> Response:
    settings = node().settings
    ports = node().ports
    return json_answer(
        {
            "ApiVersion": ORTHANC_API_VERSION,
            "CheckRevisions": False,
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
    )


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


@blueprint.route("/changes", methods=["GET", "DELETE"])
async def changes() -> Response:
    index = node().index
    if request.method == "DELETE":
        await index.clear_changes()
        return empty(200)
    if flag("last"):
        last = await index.last_change()
        items, done = ([last] if last else []), True
        last_seq = last.seq if last else 0
    else:
        since = int_arg("since") or 0
        limit = int_arg("limit")
        items, done = await index.changes(since, 100 if limit is None else limit)
        if items:
            last_seq = items[-1].seq
        else:
            latest = await index.last_change()
            last_seq = latest.seq if latest else 0
    return json_answer(
        {
            "Changes": [
                {
                    "ChangeType": c.change_type,
                    "Date": c.date,
                    "ID": c.public_id,
                    "Path": f"/{c.level.plural}/{c.public_id}",
                    "ResourceType": c.level.title,
                    "Seq": c.seq,
                }
                for c in items
            ],
            "Done": done,
            "Last": last_seq,
        }
    )


@blueprint.route("/exports", methods=["GET", "DELETE"])
async def exports() -> Response:
    if request.method == "DELETE":
        return empty(200)
    return json_answer({"Exports": [], "Done": True, "Last": 0})
