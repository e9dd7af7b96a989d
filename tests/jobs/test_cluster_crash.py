"""A member SIGKILLed while it runs a job: another member resumes the job once its lease expires.

On each index backend (shared_index). The killed member is a process of its own (`python -m tests.support.process`, the product's
entry point plus the test job types); the survivor runs in this process. Both use a short lease.
Waiting for a real process takes real time: every wait across processes is a bounded poll.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from tests.support.cluster import in_state, row_when, start_member
from tests.support.job_types import JOURNAL
from tests.support.node import client_of
from tests.support.process import POLL_INTERVAL, kill, node_process, write_config

LEASE_SECONDS = 1
STEPS = 40
LONG_JOB = {"Asynchronous": True, "Steps": STEPS, "Delay": 0.05, "Label": "long"}  # two seconds of steps
TAKE_OVER_BOUND = 30.0


async def test_a_killed_members_job_is_resumed_by_another(tmp_path: Path, shared_index: dict[str, Any]) -> None:
    config, url = write_config(
        tmp_path, MemberId="killed", JobsLeaseTimeout=LEASE_SECONDS, ConcurrentJobs=1, **shared_index
    )
    async with trio.open_nursery() as nursery, httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with node_process(config, url, tmp_path / "member.log") as process:
            job_id = (await http.post("/test/jobs", json=LONG_JOB)).json()["ID"]
            with trio.fail_after(TAKE_OVER_BOUND):  # some steps done and written by the member process
                while (await http.get(f"/jobs/{job_id}")).json()["Content"]["Position"] < 2:
                    await trio.sleep(POLL_INTERVAL)
            survivor = await start_member(nursery, tmp_path, "survivor", JobsLeaseTimeout=LEASE_SECONDS, **shared_index)
            assert JOURNAL == []  # the job runs in the member process only
            killed_at = await kill(process)
        row = await row_when(survivor, job_id, in_state("Success", "Failure"))
        assert row.state == "Success"
        assert row.owner is None and row.generation == 2  # claimed by the killed member, then by the survivor
        async with client_of(survivor) as client:
            ended = (await client.get(f"/jobs/{job_id}")).json()
        assert ended["Content"]["Position"] == STEPS
        # The survivor went on from the last step the killed member wrote, not from the first.
        resumed_at = int(JOURNAL[0].split(":")[1])
        assert resumed_at >= 2 and JOURNAL[-1] == "long:stop:Success"
        assert trio.current_time() - killed_at < TAKE_OVER_BOUND
        nursery.cancel_scope.cancel()
