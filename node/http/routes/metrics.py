"""/tools/metrics-prometheus and the switch /tools/metrics."""

from __future__ import annotations

import time

from quart import Blueprint, Response, request

from ...units import MEGABYTE
from ..answers import boolean_body, node, text_answer

blueprint = Blueprint("metrics", __name__)


async def _refresh_scrape_gauges() -> None:
    """Gauges Orthanc recomputes at every scrape: resource counts, disk use, jobs by state, up time."""
    context = node()
    metrics = context.metrics
    stats = await context.index.statistics()
    now = time.time()
    for level in ("patients", "studies", "series", "instances"):
        metrics.set_gauge(f"orthanc_count_{level}", stats[f"Count{level.capitalize()}"], now)
    metrics.set_gauge("orthanc_disk_size_mb", stats["DiskSize"] / MEGABYTE, now)
    metrics.set_gauge("orthanc_uncompressed_size_mb", stats["UncompressedSize"] / MEGABYTE, now)
    counts = await context.jobs.counts()
    pending = counts.get("Pending", 0) + counts.get("Retry", 0)
    running = counts.get("Running", 0) + counts.get("Paused", 0)
    success, failed = counts.get("Success", 0), counts.get("Failure", 0)
    for name, value in (("pending", pending), ("running", running), ("success", success),
                        ("failed", failed), ("completed", success + failed)):  # fmt: skip
        metrics.set_gauge(f"orthanc_jobs_{name}", value, now)
    metrics.set_gauge("orthanc_up_time_s", int(now - context.started_at), now)
    metrics.set_gauge("orthanc_last_change", await context.index.last_seq(), now)


@blueprint.route("/tools/metrics-prometheus")
async def prometheus() -> Response:
    metrics = node().metrics
    if metrics.enabled:
        await _refresh_scrape_gauges()
    return Response(metrics.render(), content_type="text/plain; version=0.0.4")


@blueprint.route("/tools/metrics", methods=["GET", "PUT"])
async def switch() -> Response:
    metrics = node().metrics
    if request.method == "GET":
        return text_answer("1" if metrics.enabled else "0")
    metrics.enabled = await boolean_body()
    return text_answer("")
