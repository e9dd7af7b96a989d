"""Command line: `python -m node [CONFIG ...] [--no-jobs] [--verbose]`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from functools import partial

import trio

from .config import Config, load_config_files
from .errors import OrthancError
from .supervisor import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dicom-node", description="An Orthanc-compatible DICOM node.")
    parser.add_argument("config", nargs="*", help="JSON configuration files or folders of them")
    parser.add_argument("--no-jobs", action="store_true", help="do not reload the jobs saved at the last stop")
    parser.add_argument("--verbose", action="store_true", help="log at debug level")
    return parser.parse_args(argv)


async def run_until_signal(config: Config, *, load_jobs: bool, reload: Callable[[], Config]) -> None:
    """Serve until SIGINT, SIGTERM or a client's shutdown, then stop everything in order."""
    async with trio.open_nursery() as nursery:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

            async def node(task_status: trio.TaskStatus[object]) -> None:
                await serve(config, load_jobs=load_jobs, reload=reload, task_status=task_status)
                nursery.cancel_scope.cancel()  # shut down by a client: stop listening for signals

            await nursery.start(node)
            async for signum in signals:
                logging.getLogger(__name__).info("received %s, stopping", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    def load() -> Config:
        return Config(load_config_files(args.config))

    try:
        config = load()
    except (OrthancError, OSError) as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    trio.run(partial(run_until_signal, config, load_jobs=not args.no_jobs, reload=load))
    return 0
