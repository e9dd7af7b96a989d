"""The root of the nursery tree: storage, jobs, DICOM and HTTP, started in order.

Cancelling the scope that runs :func:`serve` stops them in reverse order: HTTP
first (no new requests), then DICOM (no new associations), then jobs (whose
final save still finds the index open), and the index is closed last.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import trio

from .clock import orthanc_date
from .config import Config
from .context import Lifecycle, NodeContext
from .dicom.dictionary import install_option as install_dictionary
from .dicom.ids import Level
from .errors import OrthancError
from .http.app import create_app
from .http.server import serve_http
from .jobs.engine import JobsEngine
from .jobs.types.archive import remove_stale_archives
from .metrics import Metrics
from .net.scp import run_scp
from .net.tcp import StartGate
from .offload import offload
from .remotes.queries import QueryStore
from .remotes.registry import Remotes
from .runtime_settings import RuntimeSettings
from .services.bundle import ServiceBundle
from .services.ingest import Ingest
from .services.recovery import recover_lost_stores
from .services.resources import Resources
from .services.stability import StabilityTracker, last_arrival_in
from .settings import NodeSettings
from .shared_state import SharedState
from .storage.files import FileStore
from .storage.index import Index, open_index
from .storage.sweep import sweep_storage
from .worker_processes import worker_processes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ListenFds:
    """Listening sockets handed down by the supervisor of the members (file descriptors), adopted
    instead of binding HttpPort and DicomPort; None: bind as configured. With them, the members'
    start gate: ``ready``, where this member tells the supervisor it serves, and ``gate``, which
    its first accepts wait for (see :class:`~node.net.tcp.StartGate`)."""

    http: int | None = None
    dicom: int | None = None
    ready: int | None = None
    gate: StartGate | None = None

    @property
    def inherited(self) -> bool:
        return self.http is not None or self.dicom is not None

    def say_ready(self) -> None:
        """Tell the supervisor that this member serves (once: the descriptor is closed)."""
        if self.ready is None:
            return
        try:
            os.write(self.ready, b"\n")
        except OSError as error:  # the supervisor is gone: its end of the gate is closed with it
            log.warning("cannot tell the supervisor this member is ready: %s", error)
        finally:
            os.close(self.ready)


class ServiceStack:
    """Services started one after the other and stopped in reverse order.

    A plain nursery would cancel all its children at once. Each service here
    runs shielded in a scope of its own once it serves; :meth:`stop` cancels those
    scopes from the last started to the first, waiting for each to finish.

    Not while it starts: trio leaves a task whose start was cancelled (a stop during
    start-up) where it started, for it to end on its own, which a shielded one never did.
    """

    def __init__(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        self._running: list[tuple[str, trio.CancelScope, trio.Event]] = []

    async def start(self, name: str, service: Callable[..., Awaitable[Any]]) -> Any:
        """Start ``service(task_status=...)`` and return what it reports as started."""
        scope = trio.CancelScope()
        done = trio.Event()

        async def run(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                with scope:
                    await service(task_status=_ShieldedOnceServing(task_status, scope, self._nursery))
            finally:
                done.set()

        started = await self._nursery.start(run)
        self._running.append((name, scope, done))
        return started

    async def stop(self) -> None:
        with trio.CancelScope(shield=True):
            while self._running:
                name, scope, done = self._running.pop()
                scope.cancel()
                await done.wait()
                log.info("%s stopped", name)


class _ShieldedOnceServing:
    """The task status of a starting service: it reports the start, then shields the service,
    if the service now runs in the stack's nursery (not when its start was cancelled)."""

    def __init__(self, status: trio.TaskStatus[Any], scope: trio.CancelScope, nursery: trio.Nursery) -> None:
        self._status = status
        self._scope = scope
        self._nursery = nursery

    def started(self, value: Any = None) -> None:
        self._status.started(value)
        if trio.lowlevel.current_task().parent_nursery is self._nursery:
            self._scope.shield = True


async def _start_http(stack: ServiceStack, context: NodeContext, fds: ListenFds) -> int:
    app = create_app(context)
    return int(await stack.start("http", partial(serve_http, app, context.settings.http, fd=fds.http, gate=fds.gate)))


async def serve(
    config: Config,
    *,
    load_jobs: bool = True,
    file_store: type[FileStore] = FileStore,
    reload: Callable[[], Config] | None = None,
    restarted: Callable[[NodeContext], object] | None = None,
    listen_fds: ListenFds | None = None,
    task_status: trio.TaskStatus[NodeContext] = trio.TASK_STATUS_IGNORED,
) -> str:
    """Run a node until cancelled or shut down by a client; ``task_status`` receives its context
    (with bound ports). Returns what the client asked.

    ``file_store`` is the class of the storage area: a subclass may instrument or replace
    how its files are flushed (see :class:`FileStore`). A client's reset stops the node and
    starts it again with the configuration ``reload`` gives (the same one without it), on the
    ports it had bound; ``restarted`` then receives the new context once it serves.

    A member of several (``listen_fds`` handed down, MemberId set) serves on the sockets it was
    given, and returns on a reset too: its supervisor starts every member again (the sockets
    are closed with the servers), and it leaves the start-up cleanups to that supervisor.
    """
    fds = listen_fds or ListenFds()
    started: Callable[[NodeContext], object] = task_status.started
    while True:
        action, ports = await _serve_once(config, load_jobs, file_store, started, fds)
        if action != Lifecycle.RESET or fds.inherited:
            return action
        log.info("reset: starting again with the configuration read anew")
        config = (reload() if reload is not None else config).with_values(
            HttpPort=ports.get("http", 0), DicomPort=ports.get("dicom", 0)
        )
        started = restarted if restarted is not None else _ignored


def _ignored(_: NodeContext) -> None:
    """What a restart reports to when nobody asked to know."""


async def _serve_once(
    config: Config,
    load_jobs: bool,
    file_store: type[FileStore],
    started: Callable[[NodeContext], object],
    fds: ListenFds,
) -> tuple[str, dict[str, int]]:
    """One run of the node, until a client asks it to reset or to shut down: what it asked, and the bound ports."""
    settings = NodeSettings.from_config(config)
    storage = settings.storage
    install_dictionary(settings.dictionary)
    member = settings.member_id is not None  # one of several sharing the storage
    supervised = fds.inherited  # started by the supervisor of the members, which cleans the storage once for all
    # Other processes store into the same index: a resource is stable once quiet through all of them.
    shared_index = member or storage.postgresql.enabled
    metrics = Metrics(enabled=settings.metrics_enabled, member=settings.member_id)
    files = file_store(storage.storage_directory, compress=storage.compress, sync=storage.sync, metrics=metrics)
    if not member and (await offload(remove_stale_archives, storage)) > 0:
        log.info("removed the archives of asynchronous jobs left by the previous run")
    index = await open_index(storage, shared=member)
    journal = None if storage.compress else index.enable_file_recovery()
    try:
        async with trio.open_nursery() as nursery:
            stack = ServiceStack(nursery)
            try:

                async def on_stable(public_id: str, level: Level) -> None:
                    await index.log_change(f"Stable{level.title}", public_id, level, orthanc_date())

                last_arrival = partial(last_arrival_in, index) if shared_index else None
                stability = StabilityTracker(storage.stable_age, on_stable, last_arrival)
                services = ServiceBundle(
                    index=index,
                    files=files,
                    ingest=Ingest(storage, index, files, stability, settings.transcoding),
                    resources=Resources(index, files, stability),
                    metrics=metrics,
                    transcoding=settings.transcoding,
                )
                if journal is not None:
                    # Before any name is journaled anew, and before the sweep; a member leaves it
                    # to its supervisor, which recovers once for all before the members start.
                    if not member:
                        await recover_lost_stores(index, files, services.ingest)
                    files.journal = journal
                await offload(files.start_reserving)
                engine = JobsEngine(services, settings.jobs, load=load_jobs)
                runtime = RuntimeSettings.from_config(config)
                remotes = await Remotes.load(settings.remotes, index)
                context = NodeContext(
                    settings=settings,
                    runtime=runtime,
                    services=services,
                    jobs=engine,
                    remotes=remotes,
                    queries=QueryStore(settings.queries),
                    shared=SharedState(index, runtime, metrics, remotes, shared=shared_index),
                    started_at=time.time(),
                )
                await stack.start("stability", _started_at_once(stability.run))
                await _start_services(stack, context, fds)
                if shared_index:
                    nursery.start_soon(context.shared.follow)
                if not supervised:  # safe beside other processes: it never takes a file being stored
                    nursery.start_soon(_sweep_storage, files, index)
                log.info("node ready: %s", context.ports)
                started(context)
                action = await context.lifecycle.wait()
                log.info("%s asked by a client: stopping", action)
                nursery.cancel_scope.cancel()  # the storage sweep, if still under way
                return action, dict(context.ports)
            finally:
                await stack.stop()
    finally:
        with trio.CancelScope(shield=True):
            await offload(files.close)  # first: its reserving thread may be journaling through the index
            await index.close()
            worker_processes().close()  # the codec processes left idle; running calls ended with their tasks
        log.info("node stopped")


async def _sweep_storage(files: FileStore, index: Index) -> None:
    """The start-up sweep of the storage area, in the background: a large one takes a while to walk."""
    try:
        await sweep_storage(files, index)
    except (OSError, OrthancError) as error:  # an unreadable folder: the node serves on, the log says why
        log.error("storage sweep interrupted: %s", error)


def _started_at_once(run: Callable[[], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Adapt a service with nothing to report at start to :meth:`ServiceStack.start`."""

    async def service(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await run()

    return service


async def _start_services(stack: ServiceStack, context: NodeContext, fds: ListenFds) -> None:
    """Jobs, then DICOM, then HTTP: each can rely on what started before it."""
    await stack.start("jobs", context.jobs.run)
    if context.settings.dicom.enabled:
        context.ports["dicom"] = await stack.start("dicom", partial(run_scp, context, fd=fds.dicom, gate=fds.gate))
    if context.settings.http.enabled:
        context.ports["http"] = await _start_http(stack, context, fds)
