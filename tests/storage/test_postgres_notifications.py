"""The PostgreSQL index's messages between processes (LISTEN/NOTIFY): delivery, a listener that
lost its connection, and a receive that is cancelled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from node.storage.index.notifications import MAYBE_LOST
from node.storage.index.postgresql import PostgresIndex
from tests.support.postgres import Cluster, postgres_settings

RECEIVE_BOUND = 5.0  # seconds; a message arrives in milliseconds, a reconnection in a fraction of a second
CANCEL_BOUND = 0.05


@pytest.fixture
async def index(postgres_database: dict[str, Any]) -> AsyncIterator[PostgresIndex]:
    opened = await PostgresIndex.open(postgres_settings(postgres_database))
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_message_reaches_every_listener_and_a_command_is_told_at_commit(index: PostgresIndex) -> None:
    listeners = [await index.listen(), await index.listen()]
    try:
        await index.send("m-1", "hello")
        with trio.fail_after(RECEIVE_BOUND):
            assert [await listener.receive() for listener in listeners] == [[("m-1", "hello")]] * 2
        await index.insert_job("j", "{}", state="Pending", priority=0, owner=None, ttl_ms=60_000)
        await index.claim_job("m-2", 60_000)
        assert await index.set_job_command("j", "cancel", tell_owner="command") == "m-2"
        with trio.fail_after(RECEIVE_BOUND):
            assert await listeners[0].receive() == [("m-2", "command")]
    finally:
        for listener in listeners:
            await listener.close()


async def test_a_listener_that_lost_its_connection_says_so_and_listens_again(
    index: PostgresIndex, postgres_cluster: Cluster, postgres_database: dict[str, Any]
) -> None:
    listener = await index.listen()
    try:
        with postgres_cluster.connect(postgres_database["Database"]) as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
            ).fetchall()
        assert killed == [(True,)]
        with trio.fail_after(RECEIVE_BOUND):
            assert await listener.receive() is MAYBE_LOST
            await index.send("m-1", "again")
            assert await listener.receive() == [("m-1", "again")]
    finally:
        await listener.close()


async def test_a_cancelled_receive_returns_at_once(index: PostgresIndex) -> None:
    listener = await index.listen()
    try:
        start = trio.current_time()
        with trio.move_on_after(0.01):
            await listener.receive()
        assert trio.current_time() - start < CANCEL_BOUND
    finally:
        await listener.close()
