"""The partition rule: a member that cannot renew its leases stops its jobs itself, without
writing, before the leases end (when another member may take them), and gives their rows back
once it reaches the index again.

The member's index is PostgreSQL, whose calls run in threads: a renewal blocked on a row lock
that the test holds (the index unreachable, as far as the renewals go) leaves Trio idle, and the
mock clock then jumps to the next timer. The clock runs at the real rate otherwise, so that the
database calls in between take their real time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio.testing

from node.jobs.cluster import PARTITION_MARGIN
from node.jobs.record import is_not_running
from tests.support.cluster import held_by, row_when, start_member
from tests.support.job_types import JOURNAL, StepsJob
from tests.support.jobs import record_of, until
from tests.support.node import jobs_of
from tests.support.postgres import Cluster

LEASE = 9  # renewed every 3 s; the jobs stop at the latest 2 s before a lease would end
STEP = 10.0  # the job sleeps in its step meanwhile: nothing of its own reaches the index
AUTOJUMP = 0.1  # seconds of real idleness after which the clock jumps (more than a database call takes)


async def test_a_member_that_cannot_renew_stops_its_job_before_the_lease_ends(
    nursery: trio.Nursery,
    tmp_path: Path,
    postgres_cluster: Cluster,
    postgres_database: dict[str, Any],
    mock_clock: trio.testing.MockClock,
) -> None:
    mock_clock.rate = 1.0
    mock_clock.autojump_threshold = AUTOJUMP
    options = {"HttpServerEnabled": False, "DicomServerEnabled": False, "ConcurrentJobs": 1}
    member = await start_member(nursery, tmp_path, "m", PostgreSQL=postgres_database, JobsLeaseTimeout=LEASE, **options)
    submitted = await jobs_of(member).submit(StepsJob(1, delay=STEP, label="long"))
    job_id = submitted.id
    held = await row_when(member, job_id, held_by(member))
    await until(lambda: JOURNAL == ["long:0"])  # running here, in its step
    running = record_of(member, job_id)

    with postgres_cluster.connect(postgres_database["Database"]) as blocker:
        lock = partial(blocker.execute, "SELECT id FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
        await trio.to_thread.run_sync(blocker.execute, "BEGIN")
        await trio.to_thread.run_sync(lock)
        blocked_at = trio.current_time()
        with trio.fail_after(LEASE):
            await running.status.wait_value(is_not_running)
            await running.stop_hooks.wait_value(0)
        # Counted from the last renewal, which came before the block.
        assert trio.current_time() - blocked_at <= LEASE - PARTITION_MARGIN
        assert JOURNAL == ["long:0", "long:stop:Paused"]
        assert jobs_of(member).get(job_id) is None
        row = await trio.to_thread.run_sync(
            lambda: blocker.execute(
                "SELECT state, owner, generation, data FROM jobs WHERE id = %s", (job_id,)
            ).fetchone()
        )
        assert row == ("Running", held.owner, held.generation, held.data)  # nothing written
        await trio.to_thread.run_sync(blocker.rollback)

    # The index is back: the row is given back, claimed again (here, the only member) and ends.
    with trio.fail_after(LEASE + STEP):  # waits on hints, not by polling: the clock jumps the step
        await jobs_of(member).wait_completed(submitted)
    ended = await member.index.job_row(job_id)
    assert ended is not None and (ended.state, ended.generation) == ("Success", 2)
    assert JOURNAL == ["long:0", "long:stop:Paused", "long:0", "long:stop:Success"]
