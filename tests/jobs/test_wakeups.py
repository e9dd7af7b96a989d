"""Wake-up hints between the members of one machine (Unix datagrams): a member too busy to read
its hints never holds up, nor breaks, the members that send it some, and learns that it lost some."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from node.jobs.wakeups import ALL, RESYNC, UnixDatagramWakeUps, datagram_queue_limit

HINT = "pending"


@asynccontextmanager
async def members(*names: str) -> AsyncIterator[dict[str, UnixDatagramWakeUps]]:
    """Open wake-ups for ``names``, in a scope of their own (the test's alone)."""
    scope = f"test-{uuid.uuid4()}"

    async def everyone() -> list[str]:
        return list(names)

    opened = {name: UnixDatagramWakeUps(scope, name, everyone) for name in names}
    try:
        for wakeups in opened.values():
            await wakeups.open()
        yield opened
    finally:
        for wakeups in opened.values():
            await wakeups.close()


async def test_hints_arrive_in_order() -> None:
    async with members("a", "b") as group:
        await group["a"].notify("b", "command")
        await group["a"].notify(ALL, HINT)
        hints = aiter(group["b"])
        assert [await anext(hints), await anext(hints)] == ["command", HINT]


async def test_a_member_that_reads_no_hints_holds_no_sender_up() -> None:
    """Its queue full (the member paused, or busy), the hints of several tasks at once, more than
    it holds, are sent, or given up, at once: a sender used to wait for room, and a second sender
    meanwhile failed on the socket the first waited on, which stopped the member's jobs engine."""
    senders = 4
    hints = 3 * (datagram_queue_limit() + 1)
    async with members("busy", "sender") as group:
        with trio.fail_after(5):  # the whole test, on the real clock: no send waits
            async with trio.open_nursery() as nursery:
                for _ in range(senders):
                    for _ in range(hints // senders):
                        nursery.start_soon(group["sender"].notify, "busy", HINT)


async def test_a_member_whose_queue_was_full_looks_at_everything() -> None:
    """Hints were refused while its queue was full: the next it reads is RESYNC."""
    async with members("busy", "sender") as group:
        for _ in range(datagram_queue_limit() + 5):
            await group["sender"].notify("busy", HINT)
        assert await anext(aiter(group["busy"])) == RESYNC


async def test_a_queue_never_full_loses_nothing() -> None:
    async with members("reader", "sender") as group:
        for _ in range(datagram_queue_limit()):
            await group["sender"].notify("reader", HINT)
        hints = aiter(group["reader"])
        assert [await anext(hints) for _ in range(datagram_queue_limit())] == [HINT] * datagram_queue_limit()
