"""/tools/metrics-prometheus and the switch /tools/metrics."""

from __future__ import annotations

import time

from quart import Blueprint, Response, request

from ...offload import offload
from ...units import MEGABYTE
from ..answers import boolean_body, node, text_answer

blueprint = Blueprint("metrics", __name__)


async def _scrape_gauges() -> dict[str, float]:
    """Gauges Orthanc recomputes at every scrape: resource counts, disk use, jobs by state, up
    time. Read from the index, they are the same whichever member answers."""
    context = node()
    stats = await context.index.statistics()
    gauges: dict[str, float] = {}
    for level in ("patients", "studies", "series", "instances"):
        gauges[f"orthanc_count_{level}"] = stats[f"Count{level.capitalize()}"]
    gauges["orthanc_disk_size_mb"] = stats["DiskSize"] / MEGABYTE
    gauges["orthanc_uncompressed_size_mb"] = stats["UncompressedSize"] / MEGABYTE
    counts = await context.jobs.counts()
    pending = counts.get("Pending", 0) + counts.get("Retry", 0)
    running = counts.get("Running", 0) + counts.get("Paused", 0)
    success, failed = counts.get("Success", 0), counts.get("Failure", 0)
    for name, value in (("pending", pending), ("running", running), ("success", success),
                        ("failed", failed), ("completed", success + failed)):  # fmt: skip
        gauges[f"orthanc_jobs_{name}"] = value
    gauges["orthanc_up_time_s"] = int(time.time() - context.started_at)
    gauges["orthanc_last_change"] = await context.index.last_seq()
    return gauges


@blueprint.route("/tools/metrics-prometheus")
async def prometheus() -> Response:
    metrics = node().metrics
    await node().shared.refresh()
    scraped = await _scrape_gauges() if metrics.enabled else {}
    return Response(await offload(metrics.render, scraped), content_type="text/plain; version=0.0.4")


@blueprint.route("/tools/metrics", methods=["GET", "PUT"])
async def switch() -> Response:
    metrics = node().metrics
    await node().shared.refresh()
    if request.method == "GET":
        return text_answer("1" if metrics.enabled else "0")
    metrics.enabled = await boolean_body()
    await node().shared.publish()
    return text_answer("")
