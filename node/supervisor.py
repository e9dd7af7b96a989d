"""The root of the nursery tree: storage, jobs, DICOM and HTTP, started in order.

Cancelling the scope that runs :func:`serve` stops HTTP and DICOM first (they
are the innermost children), then jobs, and closes the index last.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import hypercorn.config
import hypercorn.trio
import trio

from .clock import orthanc_date
from .config import Config
from .context import NodeContext
from .dicom.dictionary import install_option as install_dictionary
from .dicom.ids import Level
from .http.app import create_app
from .jobs.engine import JobsEngine
from .jobs.types.archive import remove_stale_archives
from .metrics import Metrics
from .offload import offload
from .services.ingest import Ingest
from .services.resources import Resources
from .services.stability import StabilityTracker
from .storage.files import FileStore
from .storage.index.sqlite import SqliteIndex

log = logging.getLogger(__name__)


def _port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


async def _start_http(nursery: trio.Nursery, context: NodeContext) -> int:
    config = context.config
    hconfig = hypercorn.config.Config()
    hconfig.bind = [f"{config['HttpBindAddress']}:{config['HttpPort']}"]
    hconfig.accesslog = None
    hconfig.errorlog = logging.getLogger("hypercorn.error")
    hconfig.keep_alive_timeout = max(5, int(config["HttpRequestTimeout"]))
    hconfig.graceful_timeout = 2
    app = create_app(context)
    addresses = await nursery.start(partial(hypercorn.trio.serve, app, hconfig, mode="asgi"))
    return _port_of(addresses[0])


async def serve(
    config: Config, *, load_jobs: bool = True, task_status: trio.TaskStatus[NodeContext] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run a node until cancelled; ``task_status`` receives its context (with bound ports)."""
    install_dictionary(config["Dictionary"])
    files = FileStore(config.storage_directory, compress=config["StorageCompression"])
    stale = await offload(files.remove_stale_temporaries)
    if stale:
        log.warning("removed %d half-written files left by a crash", stale)
    if await offload(remove_stale_archives, config):
        log.info("removed the archives of asynchronous jobs left by the previous run")
    index = SqliteIndex(Path(config.index_directory))
    try:
        async with trio.open_nursery() as nursery:

            async def on_stable(public_id: str, level: Level) -> None:
                await index.log_change(f"Stable{level.title}", public_id, level, orthanc_date())

            stability = StabilityTracker(float(config["StableAge"]), on_stable)
            nursery.start_soon(stability.run)
            context = NodeContext(
                config=config,
                index=index,
                files=files,
                ingest=Ingest(config, index, files, stability),
                resources=Resources(index, files, stability),
                metrics=Metrics(enabled=config["MetricsEnabled"]),
                started_at=time.time(),
            )
            await _start_services(nursery, context, load_jobs=load_jobs)
            log.info("node ready: %s", context.ports)
            task_status.started(context)
    finally:
        with trio.CancelScope(shield=True):
            await index.close()
        log.info("node stopped")


async def _start_services(nursery: trio.Nursery, context: NodeContext, *, load_jobs: bool) -> None:
    """Jobs, then DICOM, then HTTP: each can rely on what started before it."""
    config = context.config
    context.jobs = JobsEngine(context, load=load_jobs)
    await nursery.start(context.jobs.run)
    if config["DicomServerEnabled"]:
        from .net.scp import run_scp

        context.ports["dicom"] = await nursery.start(run_scp, context)
    if config["HttpServerEnabled"]:
        context.ports["http"] = await _start_http(nursery, context)
