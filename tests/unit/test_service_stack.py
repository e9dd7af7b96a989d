"""node.supervisor.ServiceStack: services started one after the other, stopped in reverse order,
each shielded from the node's cancellation once it serves, and only then."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
import trio.testing

from node.supervisor import ServiceStack

START_UP = 1.0  # seconds a service takes to start, on the virtual clock
SERVING = 100.0  # seconds it serves, unless stopped


async def test_a_service_still_starting_when_the_node_stops_ends(autojump_clock: trio.testing.MockClock) -> None:
    """A stop (SIGTERM, or a member's supervisor gone) that comes while a service starts: trio
    leaves a task whose start was cancelled where it started, to end on its own, so a service
    shielded from its start never ended and the node waited for it for ever (here, for as long
    as the service serves)."""
    ended_at: list[float] = []

    async def slow_to_start(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await trio.sleep(START_UP)
            task_status.started()
            await trio.sleep(SERVING)
        finally:
            ended_at.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        stack = ServiceStack(nursery)
        with trio.move_on_after(START_UP / 2):
            await stack.start("slow", slow_to_start)
        await stack.stop()
    assert ended_at == [START_UP / 2]


async def test_services_serve_through_a_cancellation_and_stop_in_reverse_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stopped: list[str] = []

    def service(name: str) -> Callable[..., Awaitable[None]]:
        async def run(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started(name)
            try:
                await trio.sleep_forever()
            finally:
                stopped.append(name)

        return run

    async with trio.open_nursery() as nursery:
        stack = ServiceStack(nursery)
        try:
            with trio.CancelScope() as outer:
                assert [await stack.start(n, service(n)) for n in ("first", "second")] == ["first", "second"]
                outer.cancel()
                await trio.sleep(START_UP)  # cancelled here, not the services
            assert stopped == []
        finally:
            await stack.stop()
    assert stopped == ["second", "first"]
