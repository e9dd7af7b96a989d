"""A group of node processes (`python -m node CONFIG --members N`) on free loopback ports, started
and stopped by the test; its members found among the supervisor's children.

Waiting on other processes takes real time: every wait here is a bounded poll.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio

from bench.orthanc_process import free_port

from .process import POLL_INTERVAL, ROOT, START_TIMEOUT, write_config

STOP_TIMEOUT = 30.0
RESTART_TIMEOUT = 30.0  # seconds for the supervisor to start a killed member's replacement
FRESH = {"Connection": "close"}  # each request on a connection of its own: the kernel picks a member anew


@dataclass
class Cluster:
    process: trio.Process
    url: str
    dicom_port: int
    log: Path

    def members(self) -> set[int]:
        """The pids of the supervisor's children that are alive (not zombies)."""
        return children_of(self.process.pid)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces


def children_of(parent: int) -> set[int]:
    """Live child processes of ``parent``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None and fields[1] == str(parent) and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    fields = _stat_fields(str(pid))
    return fields is not None and fields[0] != "Z"


async def wait_until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` after ``timeout`` seconds."""
    with trio.move_on_after(timeout):
        while not await condition():
            await trio.sleep(POLL_INTERVAL)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def kill_member(running: Cluster, victim: int) -> None:
    """SIGKILL the member ``victim`` and wait until its replacement serves."""
    count, started = len(running.members()), running.output().count("node ready")
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        now = running.members()
        return len(now) == count and victim not in now and running.output().count("node ready") > started

    await wait_until(replaced, RESTART_TIMEOUT, "the killed member's replacement")


async def answers(url: str) -> bool:
    """Whether /system answers 200 on a fresh connection."""
    try:
        async with httpx.AsyncClient(base_url=url, headers=FRESH) as http:
            return (await http.get("/system")).status_code == 200
    except httpx.TransportError:
        return False


def write_cluster_config(tmp_path: Path, **options: Any) -> tuple[Path, int, int]:
    """The configuration of :func:`.process.write_config` with the DICOM server on a free port too;
    its path, HTTP port and DICOM port."""
    dicom_port = free_port()
    path, url = write_config(
        tmp_path, DicomServerEnabled=True, DicomPort=dicom_port, DicomBindAddress="127.0.0.1", **options
    )
    return path, int(url.rsplit(":", 1)[1]), dicom_port


@asynccontextmanager
async def cluster(tmp_path: Path, members: int = 2, *, serving: bool = True, **options: Any) -> AsyncIterator[Cluster]:
    """``members`` node processes sharing free ports, all answering (``serving`` false: as soon as
    the supervisor holds the ports, the members still starting); stopped (SIGTERM, then SIGKILL
    of whatever is left) when the block ends."""
    config, http_port, dicom_port = write_cluster_config(tmp_path, **options)
    log = tmp_path / "cluster.log"
    with open(log, "ab") as output:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "node", str(config), "--members", str(members)],
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
    running = Cluster(process, f"http://127.0.0.1:{http_port}", dicom_port, log)
    try:

        async def ready() -> bool:
            assert process.returncode is None, running.output()[-3000:]
            if not serving:
                return f"{members} members started" in running.output()
            return running.output().count("node ready") >= members and await answers(running.url)

        await wait_until(ready, START_TIMEOUT, "the members to start")
        yield running
    finally:
        with trio.CancelScope(shield=True):
            await stop(running)


async def stop(running: Cluster) -> int:
    """SIGTERM the supervisor and wait for it; SIGKILL it and its members if it does not stop."""
    members = running.members()
    if running.process.returncode is None:
        running.process.send_signal(signal.SIGTERM)
        with trio.move_on_after(STOP_TIMEOUT):
            await running.process.wait()
    if running.process.returncode is None:
        for pid in members | {running.process.pid}:
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signal.SIGKILL)
        await running.process.wait()
    return running.process.returncode
