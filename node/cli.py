"""Command line: `python -m node [CONFIG ...] [--no-jobs] [--verbose]`."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import partial

import trio

from .config import Config, load_config_files
from .context import Lifecycle
from .errors import OrthancError
from .members import (
    DICOM_FD_FLAG,
    GATE_FD_FLAG,
    HTTP_FD_FLAG,
    MEMBER_ID_FLAG,
    READY_FD_FLAG,
    RESET_EXIT_CODE,
    SIGNALLED_EXIT_CODE,
    SUPERVISOR_FLAG,
    member_count,
    run_members,
)
from .net.tcp import StartGate
from .settings import NodeSettings
from .supervisor import ListenFds, serve

ORPHAN_CHECK_INTERVAL = 1.0  # seconds between a member's looks at whether its supervisor still runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dicom-node", description="An Orthanc-compatible DICOM node.")
    parser.add_argument("config", nargs="*", help="JSON configuration files or folders of them")
    parser.add_argument("--no-jobs", action="store_true", help="do not reload the jobs saved at the last stop")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    parser.add_argument(
        "--members", type=int, metavar="N", help="run N node processes sharing the ports (0: one per core)"
    )
    # Set by the supervisor of the members on each member's command line, never by users.
    parser.add_argument(MEMBER_ID_FLAG, help=argparse.SUPPRESS)
    parser.add_argument(HTTP_FD_FLAG, type=int, help=argparse.SUPPRESS)
    parser.add_argument(DICOM_FD_FLAG, type=int, help=argparse.SUPPRESS)
    parser.add_argument(SUPERVISOR_FLAG, type=int, help=argparse.SUPPRESS)
    parser.add_argument(READY_FD_FLAG, type=int, help=argparse.SUPPRESS)
    parser.add_argument(GATE_FD_FLAG, type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


async def run_until_signal(
    config: Config,
    *,
    load_jobs: bool,
    reload: Callable[[], Config],
    listen_fds: ListenFds | None = None,
    supervisor: int | None = None,
) -> str | None:
    """Serve until SIGINT, SIGTERM or a client's shutdown, then stop everything in order; what a
    client asked, if it did (a member returns on a reset rather than serving again).

    A member (``supervisor``: its supervisor's process) also stops once that process is gone,
    watched from the start: a supervisor may die while its member still starts."""
    action: str | None = None
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            if supervisor is not None:
                nursery.start_soon(_stop_when_orphaned, nursery.cancel_scope, supervisor)

            async def node(task_status: trio.TaskStatus[object]) -> None:
                nonlocal action
                action = await serve(
                    config, load_jobs=load_jobs, reload=reload, listen_fds=listen_fds, task_status=task_status
                )
                nursery.cancel_scope.cancel()  # shut down by a client: stop listening for signals

            await nursery.start(node)
            _freeze_startup_heap()
            if listen_fds is not None:  # the collection above held the loop: the gate opens after it
                listen_fds.say_ready()
            async for signum in signals:
                logging.getLogger(__name__).info("received %s, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break
    return action


def _freeze_startup_heap() -> None:
    """What start-up built (modules, tables, the app, its caches) lives as long as the process:
    frozen out of the collector's generations, it is no longer scanned by every full collection.
    Measured on a node running jobs: a full collection held the event loop 20-40 ms before,
    and the collections of a run took a seventh of the time after."""
    gc.collect()
    gc.freeze()


async def _stop_when_orphaned(scope: trio.CancelScope, supervisor: int) -> None:
    """A member whose supervisor died stops: left serving, it would hold the ports against the
    next supervisor, and nobody would restart it. The supervisor is known by its process ID, given
    on the command line: the parent a member finds once it serves may already be the process that
    adopted it."""
    while os.getppid() == supervisor:
        await trio.sleep(ORPHAN_CHECK_INTERVAL)
    logging.getLogger(__name__).warning("the supervisor of the members is gone: stopping")
    scope.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    who = f"member {args.member_id} " if args.member_id is not None else ""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s {who}%(name)s: %(message)s",
    )

    def load() -> Config:
        config = Config(load_config_files(args.config))
        if args.members is not None:
            config = config.with_values(Members=args.members)
        if args.member_id is not None:
            config = config.with_values(MemberId=args.member_id)
        return config

    try:
        config = load()
        settings = NodeSettings.from_config(config)
    except (OrthancError, OSError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if settings.member_id is None and member_count(settings.members) > 1:
        flags = [flag for flag, on in (("--verbose", args.verbose), ("--no-jobs", args.no_jobs)) if on]
        return run_members(args.config, settings, member_count(settings.members), flags)
    listen_fds = ListenFds(
        http=args.http_fd,
        dicom=args.dicom_fd,
        ready=args.ready_fd,
        gate=StartGate(args.gate_fd) if args.gate_fd is not None else None,
    )
    action = trio.run(
        partial(
            run_until_signal,
            config,
            load_jobs=not args.no_jobs,
            reload=load,
            listen_fds=listen_fds,
            supervisor=args.supervisor_pid,
        )
    )
    if action == Lifecycle.RESET:
        return RESET_EXIT_CODE
    if action is None and args.member_id is not None:
        return SIGNALLED_EXIT_CODE  # stopped by a signal, not by a client: its supervisor tells them apart
    return 0
