"""Crash safety with a real process: SIGKILL never loses a job answered more than 100 ms before it.

The node runs as `python -m tests.launcher` (the product's entry point plus test
job types). Waiting for a real process uses real time, with bounded polls only.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]
JOB = {"Asynchronous": True, "Steps": 3, "Delay": 0.02}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp_path: Path) -> tuple[Path, str]:
    port = free_port()
    config = {
        "StorageDirectory": str(tmp_path / "storage"),
        "HttpPort": port,
        "HttpBindAddress": "127.0.0.1",
        "DicomServerEnabled": False,
        "ConcurrentJobs": 2,
        "JobsHistorySize": 1000,
    }
    path = tmp_path / "node.json"
    path.write_text(json.dumps(config))
    return path, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def node_process(config: Path, url: str, log: Path) -> AsyncIterator[trio.Process]:
    """The launcher as a subprocess, ready to answer; killed (if still alive) when the block ends."""
    with open(log, "ab") as output:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "tests.launcher", str(config)], cwd=ROOT, stdout=output, stderr=output
        )
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            with trio.fail_after(30):
                while True:
                    assert process.returncode is None, log.read_text()[-3000:]
                    try:
                        if (await http.get("/system")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await trio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


async def kill(process: trio.Process) -> float:
    moment = trio.current_time()
    process.kill()  # SIGKILL
    await process.wait()
    return moment


async def jobs_by_id(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {job["ID"]: job for job in (await http.get("/jobs", params={"expand": ""})).json()}


async def test_sigkill_loses_no_answered_job(tmp_path: Path) -> None:
    config, url = write_config(tmp_path)
    log = tmp_path / "node.log"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        # 1. 100 jobs, killed 200 ms after the last answer: all of them must survive.
        async with node_process(config, url, log) as process:
            first = [(await http.post("/test/jobs", json=JOB)).json()["ID"] for _ in range(100)]
            await trio.sleep(0.2)
            await kill(process)

        # 2. Restarted: every job is back; kill again in the middle of a stream of submissions.
        answered: dict[str, float] = {}
        async with node_process(config, url, log) as process:
            assert set(first) <= (await jobs_by_id(http)).keys()
            async with trio.open_nursery() as nursery:

                async def submit_until_killed() -> None:
                    while True:
                        try:
                            answer = await http.post("/test/jobs", json=JOB)
                        except httpx.TransportError:
                            return  # the node is gone
                        answered[answer.json()["ID"]] = trio.current_time()

                nursery.start_soon(submit_until_killed)
                await trio.sleep(0.3)
                killed_at = await kill(process)
                nursery.cancel_scope.cancel()
        safe = {job_id for job_id, moment in answered.items() if moment < killed_at - 0.1}
        assert len(safe) > 10, len(safe)

        # 3. Restarted again: nothing answered 100 ms before the kill is lost, and everything completes.
        async with node_process(config, url, log):
            assert set(first) | safe <= (await jobs_by_id(http)).keys()
            with trio.fail_after(60):
                while any(job["State"] != "Success" for job in (await jobs_by_id(http)).values()):
                    await trio.sleep(0.1)
            jobs = await jobs_by_id(http)
            assert all(jobs[job_id]["Content"]["Position"] == 3 for job_id in first)
