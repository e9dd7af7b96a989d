"""Members: several node processes on one machine sharing its ports, its index and its storage.

``dicom-node --members N`` (or the ``Members`` option) makes this process a plain supervisor,
with no Trio loop of its own: it binds the HTTP and DICOM ports (failing if they are taken),
runs the start-up cleanups once (a member must not delete the files another member is writing),
then starts N processes ``python -m node CONFIG... --member-id ID --http-fd N --dicom-fd M``.

Every member accepts from the same listening socket of each port, which the supervisor keeps
open for the whole run, once every member serves (a start gate: connections opened meanwhile wait
in the socket's queue): a new connection goes to whichever member accepts first, and a member
holding more connections waits a little longer before it accepts (see
:class:`~node.net.tcp.PacedListener`), so that a burst of keep-alive connections spreads over
the members by load, not by a hash of their addresses (with SO_REUSEPORT sockets, 4 connections
went 1/3 or 0/4 as often as 2/2). The queue survives a member's death: connections waiting in it
go to the others or to its replacement, none is reset.

What a member's exit means:
- the supervisor stopped it (SIGTERM or SIGINT to the supervisor): nothing, all are stopping;
- exit code 0: a client asked that member to shut down (``/tools/shutdown``), which
  stops the whole group, as it stops a single node;
- :data:`RESET_EXIT_CODE`: a client asked that member to reset (``/tools/reset``); every member
  is restarted, so that all of them read the configuration anew;
- anything else (a crash, a kill, a signal from elsewhere: :data:`SIGNALLED_EXIT_CODE`): that
  member alone is started again, on the same sockets.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import trio
from prometheus_client import multiprocess

from .dicom.dictionary import install_option as install_dictionary
from .dicom.ids import Level
from .errors import OrthancError
from .jobs.types.archive import remove_stale_archives
from .services.ingest import Ingest
from .services.recovery import recover_lost_stores
from .services.stability import StabilityTracker
from .settings import NodeSettings
from .shared_state import RUNTIME_PROPERTY
from .storage.files import FileStore
from .storage.index import open_index
from .storage.index.maintenance import checkpoint_if_large, remove_properties
from .storage.sweep import sweep_storage

log = logging.getLogger(__name__)

RESET_EXIT_CODE = 3  # a member's exit code after a client's /tools/reset
SIGNALLED_EXIT_CODE = 4  # a member's exit code once stopped by a signal: not a client's shutdown
MEMBER_ID_FLAG = "--member-id"
SUPERVISOR_FLAG = "--supervisor-pid"  # the supervisor's process ID: a member stops once it is gone
HTTP_FD_FLAG = "--http-fd"
DICOM_FD_FLAG = "--dicom-fd"
READY_FD_FLAG = "--ready-fd"  # where a member writes a line once it serves
GATE_FD_FLAG = "--gate-fd"  # the start gate's read end, at its end once the group serves
# Seconds the first members wait for the others before they accept anyway (a member that cannot
# start at all opens the gate at once, as it exits).
GROUP_START_TIMEOUT = 30.0
LISTEN_BACKLOG = 1024  # connections queued per member socket
STOP_TIMEOUT = 20.0  # seconds a member gets to stop after SIGTERM, before SIGKILL
# A member that dies sooner than this after its start is started again after a growing delay,
# so that one failing at every start does not spin.
QUICK_EXIT = 5.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
TICK = 1.0  # seconds between the supervisor's rounds when no signal wakes it
WAL_CHECK_INTERVAL = 10.0  # seconds between looks at the size of the index's write-ahead log
METRICS_ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when a member imports it
PIPE_READ = 4096  # bytes read from the members' ready pipe at once


def member_count(configured: int) -> int:
    """``Members`` as a number of processes: 0 means one per core."""
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


@dataclass
class _Member:
    member_id: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None  # monotonic time of a delayed restart
    restart_delay: float = FIRST_RESTART_DELAY


@dataclass
class _Ports:
    """The listening socket of each port, bound once and handed to every member."""

    http: socket.socket | None
    dicom: socket.socket | None

    def named(self) -> list[tuple[str, str, socket.socket]]:
        """(member flag, name, socket) of each port served."""
        found = ((HTTP_FD_FLAG, "http", self.http), (DICOM_FD_FLAG, "dicom", self.dicom))
        return [(flag, name, sock) for flag, name, sock in found if sock is not None]

    def close(self) -> None:
        for _, _, sock in self.named():
            sock.close()


class _GateKeeper:
    """The supervisor's side of the members' start gate (the members' side is
    :class:`~node.net.tcp.StartGate`): they accept nothing until every one of them serves. Each
    writes a line to ``ready`` once it serves, and the supervisor then closes its end of the
    gate, which every member reads, those started later too (the gate is open for them from
    the start)."""

    def __init__(self, members: int) -> None:
        self.ready_read, self.ready_write = os.pipe()
        self.gate_read, gate_write = os.pipe()
        self._gate_write: int | None = gate_write
        self._waiting = members
        self.deadline = time.monotonic() + GROUP_START_TIMEOUT

    @property
    def is_open(self) -> bool:
        return self._gate_write is None

    def member_flags(self) -> list[str]:
        return [READY_FD_FLAG, str(self.ready_write), GATE_FD_FLAG, str(self.gate_read)]

    def member_fds(self) -> list[int]:
        return [self.ready_write, self.gate_read]

    def read_ready(self) -> None:
        """What the members wrote, a line each (the pipe is readable); the gate opens once all
        did. A member started again after a crash may write too: the crash opened the gate."""
        self._waiting -= os.read(self.ready_read, PIPE_READ).count(b"\n")
        if self._waiting <= 0:
            self.open("every member serves")

    def open(self, why: str) -> None:
        if self._gate_write is not None:
            os.close(self._gate_write)
            self._gate_write = None
            log.info("members accept connections: %s", why)

    def close(self) -> None:
        for fd in (self.ready_read, self.ready_write, self.gate_read, self._gate_write):
            if fd is not None:
                os.close(fd)


def _listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket on the port (fails if anyone listens on it), inheritable by members."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a previous run's TIME_WAIT is no owner
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _listen(settings: NodeSettings) -> _Ports:
    http = dicom = None
    try:
        if settings.http.enabled:
            http = _listening_socket(settings.http.bind_address, settings.http.port)
        if settings.dicom.enabled:
            dicom = _listening_socket(settings.dicom.bind_address, settings.dicom.port)
    except OSError:
        _Ports(http, dicom).close()
        raise
    return _Ports(http, dicom)


def remove_previous_archives(settings: NodeSettings) -> None:
    """The archives of a previous run's jobs, removed once for all members, before any starts."""
    if remove_stale_archives(settings.storage):
        log.info("removed the archives of asynchronous jobs left by the previous run")


def recover_previous_stores(settings: NodeSettings) -> None:
    """The stores a crash took from the index but not from the disk, indexed again once for all
    members, before any starts. Members commit their stores without flushing the index, as a
    single node does (see SqliteIndex.enable_file_recovery), but a member cannot recover at its
    own start: the names it would find journaled may be those another member is writing to."""
    storage = settings.storage
    if storage.compress or storage.postgresql.enabled:  # no such commits there
        return

    async def unannounced(public_id: str, level: Level) -> None:
        """The tracker's verdicts: it never runs here; the members announce what they track."""

    async def recover() -> None:
        install_dictionary(settings.dictionary)
        files = FileStore(storage.storage_directory, compress=False, sync=storage.sync)
        index = await open_index(storage)
        try:
            stability = StabilityTracker(storage.stable_age, unannounced)
            ingest = Ingest(storage, index, files, stability, settings.transcoding)
            await recover_lost_stores(index, files, ingest)
        finally:
            await index.close()
            files.close()

    trio.run(recover)


def start_storage_sweep(settings: NodeSettings) -> threading.Thread:
    """The storage's orphans and half-written files, swept once for all members, in a thread of
    the supervisor while the members serve (it takes only files far older than any write in
    progress, as a single node's sweep does)."""
    storage = settings.storage

    async def sweep() -> None:
        files = FileStore(storage.storage_directory, compress=storage.compress, sync=False)
        index = await open_index(storage)
        try:
            await sweep_storage(files, index)
        finally:
            await index.close()
            files.close()

    def run() -> None:
        try:
            trio.run(sweep)
        except (OSError, OrthancError) as error:  # an unreadable folder: the members serve on, the log says why
            log.error("storage sweep interrupted: %s", error)

    thread = threading.Thread(target=run, name="storage-sweep", daemon=True)
    thread.start()
    return thread


@dataclass
class Supervisor:
    """Runs the members until a signal or a client's shutdown; see the module's docstring."""

    config_paths: Sequence[str]
    settings: NodeSettings
    count: int
    member_flags: Sequence[str] = ()  # passed on to every member (--verbose, --no-jobs)
    members: list[_Member] = field(default_factory=list)
    metrics_dir: str = ""  # the members' multiprocess metrics files
    gate: _GateKeeper | None = None

    def run(self) -> int:
        ports = _listen(self.settings)
        try:
            return self._run(ports)
        finally:
            ports.close()

    def _run(self, ports: _Ports) -> int:
        remove_previous_archives(self.settings)
        recover_previous_stores(self.settings)
        self._forget_runtime_settings()
        self.metrics_dir = tempfile.mkdtemp(prefix="dicom-node-metrics-")
        environment = {**os.environ, METRICS_ENVIRONMENT: self.metrics_dir}
        wake_read, wake_write = socket.socketpair()
        wake_write.setblocking(False)
        previous = signal.set_wakeup_fd(wake_write.fileno())
        handlers = {sig: signal.signal(sig, _note_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        try:
            self.members = [_Member(str(number + 1)) for number in range(self.count)]
            self.gate = _GateKeeper(self.count)
            for member in self.members:
                self._spawn(member, ports, environment)
            log.info("%d members started: %s", self.count, _describe(ports))
            start_storage_sweep(self.settings)
            return self._watch(ports, environment, wake_read)
        finally:
            self._stop_all()
            if self.gate is not None:
                self.gate.close()
                self.gate = None
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous)
            wake_read.close()
            wake_write.close()
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _watch(self, ports: _Ports, environment: dict[str, str], wake: socket.socket) -> int:
        next_wal_check = time.monotonic() + WAL_CHECK_INTERVAL
        while True:
            gate = self.gate
            assert gate is not None
            timeout = min([TICK, *(max(0.0, when - time.monotonic()) for when in self._restart_times())])
            if not gate.is_open:
                timeout = min(timeout, max(0.0, gate.deadline - time.monotonic()))
            readable, _, _ = select.select([wake.fileno(), gate.ready_read], [], [], timeout)
            if gate.ready_read in readable:
                gate.read_ready()
            if wake.fileno() in readable:
                signals = wake.recv(4096)
                stop = {signal.SIGTERM, signal.SIGINT} & set(signals)
                if stop:
                    log.info("received %s, stopping the members", signal.Signals(min(stop)).name)
                    return 0
            if not gate.is_open and time.monotonic() >= gate.deadline:
                gate.open(f"not every member serves after {GROUP_START_TIMEOUT:.0f} s")
            for member in self.members:
                outcome = self._reap(member)
                if outcome == "shutdown":
                    log.info("member %s was shut down by a client: stopping the others", member.member_id)
                    return 0
                if outcome == "reset":
                    log.info("member %s was reset by a client: restarting every member", member.member_id)
                    self._stop_all()
                    self._forget_runtime_settings()
                    gate.close()  # the new members wait for each other as the first ones did
                    self.gate = _GateKeeper(self.count)
                    for each in self.members:
                        self._restart(each, ports, environment)
                    break
            now = time.monotonic()
            for member in self.members:
                if member.process is None and member.restart_at is not None and member.restart_at <= now:
                    self._restart(member, ports, environment)
            if now >= next_wal_check and self._sqlite:
                checkpoint_if_large(self.settings.storage.index_directory)
                next_wal_check = now + WAL_CHECK_INTERVAL

    @property
    def _sqlite(self) -> bool:
        """Whether the index is this machine's index.sqlite, whose upkeep is the supervisor's."""
        return not self.settings.storage.postgresql.enabled

    def _forget_runtime_settings(self) -> None:
        """What clients changed through /tools lasts one run, as on a single node. On PostgreSQL
        the members of other machines may be running: the settings last as long as the cluster."""
        if self._sqlite:
            remove_properties(self.settings.storage.index_directory, [RUNTIME_PROPERTY])

    def _restart_times(self) -> list[float]:
        """When the members waiting to be started again are due."""
        return [m.restart_at for m in self.members if m.process is None and m.restart_at is not None]

    def _restart(self, member: _Member, ports: _Ports, environment: dict[str, str]) -> None:
        """Start a member again; if its process cannot be started now, try again later."""
        try:
            self._spawn(member, ports, environment)
        except OSError as error:
            log.error("member %s not started again: %s", member.member_id, error)
            member.restart_at = time.monotonic() + member.restart_delay
            member.restart_delay = min(member.restart_delay * 2, MAX_RESTART_DELAY)

    def _reap(self, member: _Member) -> str | None:
        """What the exit of a member asks for, if it exited: "shutdown", "reset", or None (its
        restart is then scheduled)."""
        process = member.process
        if process is None or process.poll() is None:
            return None
        member.process = None
        multiprocess.mark_process_dead(process.pid, self.metrics_dir)
        if self.gate is not None:  # the others serve without waiting for it
            self.gate.open(f"member {member.member_id} exited")
        code = process.returncode
        if code == 0:
            return "shutdown"
        if code == RESET_EXIT_CODE:
            return "reset"
        delay = 0.0
        if time.monotonic() - member.started < QUICK_EXIT:
            delay, member.restart_delay = member.restart_delay, min(member.restart_delay * 2, MAX_RESTART_DELAY)
        else:
            member.restart_delay = FIRST_RESTART_DELAY
        log.warning("member %s (pid %d) exited with %s: starting it again", member.member_id, process.pid, code)
        member.restart_at = time.monotonic() + delay
        return None

    def _spawn(self, member: _Member, ports: _Ports, environment: dict[str, str]) -> None:
        command = [sys.executable, "-m", "node", *self.config_paths, *self.member_flags]
        command += [MEMBER_ID_FLAG, member.member_id, SUPERVISOR_FLAG, str(os.getpid())]
        for flag, _, sock in ports.named():
            command += [flag, str(sock.fileno())]
        fds = [sock.fileno() for _, _, sock in ports.named()]
        if self.gate is not None:
            command += self.gate.member_flags()
            fds += self.gate.member_fds()
        member.process = subprocess.Popen(command, env=environment, pass_fds=fds)
        member.started = time.monotonic()
        member.restart_at = None
        log.info("member %s started (pid %d)", member.member_id, member.process.pid)

    def _stop_all(self) -> None:
        """SIGTERM every member, wait for them, SIGKILL those still there after STOP_TIMEOUT."""
        running = [m.process for m in self.members if m.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("member pid %d did not stop in %.0f s: killed", process.pid, STOP_TIMEOUT)
                process.kill()
                process.wait()
        for process in running:
            multiprocess.mark_process_dead(process.pid, self.metrics_dir)
        for member in self.members:
            member.process = None
            member.restart_at = None


def _note_signal(signum: int, frame: object) -> None:
    """Signals reach the supervisor's loop through the wake-up socket; the handler only has to exist."""


def _describe(ports: _Ports) -> str:
    def address(sock: socket.socket) -> str:
        host, port = sock.getsockname()[:2]
        return f"{host}:{port}"

    return ", ".join(f"{name} {address(sock)}" for _, name, sock in ports.named())


def run_members(config_paths: Sequence[str], settings: NodeSettings, count: int, member_flags: Sequence[str]) -> int:
    """Run ``count`` members until stopped; the supervisor's exit code."""
    try:
        return Supervisor(config_paths, settings, count, member_flags).run()
    except OSError as error:  # a port taken, a folder that cannot be made
        log.error("members not started: %s", error)
        return 1
