"""A node started as a process of its own, for the tests that kill it or try to crash it:
whatever happens to it cannot take the test run down.

`python -m tests.support.process CONFIG... [--no-jobs]` is the product's entry point
(`python -m node`) plus the test-only job types and their route (:mod:`.job_types`).
Waiting for a real process takes real time: every wait here is a bounded poll.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.orthanc_process import free_port
from node.cli import main
from node.http.routes import ALL_BLUEPRINTS

from . import job_types

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
POLL_INTERVAL = 0.05
# glibc reserves address space for a malloc arena per thread: two keep a memory cap on the
# address space close to a cap on the memory really used.
_CHILD_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


def write_config(tmp_path: Path, **options: Any) -> tuple[Path, str]:
    """A configuration file on a free loopback port (the DICOM server off unless ``options``
    say otherwise), and the node's base URL."""
    port = free_port()
    config = {
        "StorageDirectory": str(tmp_path / "storage"),
        "HttpPort": port,
        "HttpBindAddress": "127.0.0.1",
        "DicomServerEnabled": False,
        "ConcurrentJobs": 2,
        "JobsHistorySize": 1000,
        **options,
    }
    path = tmp_path / "node.json"
    path.write_text(json.dumps(config))
    return path, f"http://127.0.0.1:{port}"


def _memory_cap(limit: int) -> Callable[[], None]:
    def apply() -> None:  # runs in the child, between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


@asynccontextmanager
async def node_process(
    config: Path, url: str, log: Path, *, memory_limit: int | None = None
) -> AsyncIterator[trio.Process]:
    """The launcher as a subprocess, ready to answer; killed (if still alive) when the block ends.

    ``memory_limit`` (bytes) caps the address space of the process, so that a request
    that makes it grow without bound fails there instead of exhausting the machine.
    """
    options: dict[str, Any] = {}
    if memory_limit is not None:
        options["preexec_fn"] = _memory_cap(memory_limit)
        options["env"] = {**os.environ, **_CHILD_ENVIRONMENT}
    with open(log, "ab") as output:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.support.process", str(config)], cwd=ROOT, stdout=output, stderr=output, **options
        )
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            with trio.fail_after(START_TIMEOUT):
                while True:
                    assert process.returncode is None, log.read_text()[-3000:]
                    try:
                        if (await http.get("/system")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(POLL_INTERVAL)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def kill(process: trio.Process) -> float:
    """SIGKILL the node and wait for it to be gone; the moment of the kill."""
    moment = trio.current_time()
    process.kill()
    await process.wait()
    return moment


if __name__ == "__main__":
    ALL_BLUEPRINTS.append(job_types.blueprint)
    sys.exit(main(sys.argv[1:]))
