"""A job submitted by a request that answers at once lets that answer go before its first step."""

from __future__ import annotations

import trio
import trio.testing

from node.jobs.instance_set import ANSWER_FIRST_LIMIT, let_answer_go

BUSY_CHECKPOINTS = 50


async def _busy(done: list[int]) -> None:
    """A task with work left at many checkpoints, as an answer on its way to the socket has."""
    for step in range(BUSY_CHECKPOINTS):
        await trio.lowlevel.checkpoint()
        done.append(step)


async def test_the_first_step_waits_until_every_other_task_is_blocked(nursery: trio.Nursery) -> None:
    done: list[int] = []
    nursery.start_soon(_busy, done)
    await let_answer_go(trio.current_time())
    assert len(done) == BUSY_CHECKPOINTS


async def test_a_job_submitted_earlier_than_the_limit_starts_at_once(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    done: list[int] = []
    submitted = trio.current_time()
    mock_clock.jump(ANSWER_FIRST_LIMIT)
    nursery.start_soon(_busy, done)
    await let_answer_go(submitted)
    assert done == []  # no checkpoint: the busy task has not run yet


async def test_a_busy_loop_holds_the_job_back_no_longer_than_the_limit(
    nursery: trio.Nursery, mock_clock: trio.testing.MockClock
) -> None:
    async def never_blocks() -> None:
        while True:
            await trio.lowlevel.checkpoint()

    nursery.start_soon(never_blocks)
    submitted = trio.current_time()
    mock_clock.rate = 1.0  # the clock moves on its own: the loop never idles, the deadline must end the wait
    await let_answer_go(submitted)
    assert trio.current_time() >= submitted + ANSWER_FIRST_LIMIT
