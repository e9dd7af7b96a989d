"""PostgreSQL's LISTEN/NOTIFY as the index's messages (:mod:`.notifications`).

The listener has a connection of its own, in autocommit and outside the pool: LISTEN is state
of its session (a pooled connection would carry it to other calls), and the listener holds the
connection for as long as it listens. Connecting runs in a thread (psycopg blocks); waiting does
not: Trio waits for the connection's socket to become readable, then psycopg reads what arrived
without blocking. A cancelled receive therefore returns at once, and no thread is held while
nothing arrives.

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

    async def receive(self) -> list[Message] | None:
        while True:
            try:
                if self._conn is None:
                    await self._in_thread(self._connect)
                    self._pause = RECONNECT_FIRST_SECONDS
                    log.info("index: listening for messages again")
                    return MAYBE_LOST
                # What arrived already (even while LISTEN itself ran), without waiting; else wait for more.
                payloads = [notify.payload for notify in self._conn.notifies(timeout=0)]
                if not payloads:
                    await trio.lowlevel.wait_readable(self._conn.fileno())
                    continue
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:  # lost, or closed under it
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
