"""PostgreSQL's LISTEN/NOTIFY as the index's messages (:mod:`.notifications`).

The listener has a connection of its own, in autocommit and outside the pool: LISTEN is state
of its session (a pooled connection would carry it to other calls), and waiting for messages
holds the connection for as long as it waits. psycopg waits only in blocking calls, so each
wait is one call in a thread of the listener's own, bounded by WAIT_SECONDS: Trio never
abandons that thread, and a cancelled receive therefore returns within one wait. Messages that
arrive between two waits stay in the connection until the next one reads them.

A lost connection is opened again after a pause that doubles up to RECONNECT_MAX_SECONDS;
messages sent meanwhile are lost, which the listener then reports (:data:`.MAYBE_LOST`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import trio

from .notifications import CHANNEL, MAYBE_LOST, Listener, Message, decode

log = logging.getLogger(__name__)
T = TypeVar("T")

WAIT_SECONDS = 0.5  # one wait for messages; also how long a cancelled receive may take to return
RECONNECT_FIRST_SECONDS = 0.1
RECONNECT_MAX_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10
NOTIFY = "SELECT pg_notify(?, ?)"  # in the index's dialect: the channel, the payload


class PostgresListener(Listener):
    """Open with :meth:`open` (connected and listening once it returns)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = trio.CapacityLimiter(1)  # the connection serves one call at a time
        self._pause = RECONNECT_FIRST_SECONDS

    @classmethod
    async def open(cls, conninfo: str) -> PostgresListener:
        listener = cls(conninfo)
        await listener._in_thread(listener._connect)
        return listener

    async def _in_thread(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn, limiter=self._thread)

    def _connect(self) -> None:
        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _wait(self) -> list[str]:
        """In the thread: the payloads that arrive within one wait (returns at the first arrival)."""
        assert self._conn is not None
        return [notify.payload for notify in self._conn.notifies(timeout=WAIT_SECONDS, stop_after=1)]

    async def receive(self) -> list[Message] | None:
        while True:
            try:
                if self._conn is None:
                    await self._in_thread(self._connect)
                    self._pause = RECONNECT_FIRST_SECONDS
                    log.info("index: listening for messages again")
                    return MAYBE_LOST
                payloads = await self._in_thread(self._wait)
            except psycopg.OperationalError as error:
                log.warning("index: message listener lost its connection (%s); again in %.1f s", error, self._pause)
                await self._in_thread(self._drop)
                await trio.sleep(self._pause)
                self._pause = min(2 * self._pause, RECONNECT_MAX_SECONDS)
                continue
            messages = [message for message in map(decode, payloads) if message is not None]
            if messages:
                return messages

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        await self._in_thread(self._drop)
