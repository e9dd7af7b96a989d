"""Crash safety with a real process: SIGKILL never loses a job answered more than 100 ms before it.

The node runs as `python -m tests.support.process` (the product's entry point plus test
job types). Waiting for a real process uses real time, with bounded polls only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from tests.support.process import kill, node_process, write_config

JOB = {"Asynchronous": True, "Steps": 3, "Delay": 0.02}


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
