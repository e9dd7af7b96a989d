"""Wake-up hints carried by the index's own messages (PostgreSQL's LISTEN/NOTIFY), for members
on several machines sharing one database.

Every member receives every hint and keeps those addressed to it or to all. A listener that
lost its connection may have missed some: it then says :data:`.wakeups.RESYNC`, and the member
looks at the index for everything a hint could have told it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from ..errors import OrthancError
from ..storage.index.notifications import Listener, Notifications
from .wakeups import ALL, RESYNC, WakeUps

log = logging.getLogger(__name__)


class IndexWakeUps(WakeUps):
    """The hints of ``member`` (an incarnation ID) through ``notifications``."""

    through_index = True

    def __init__(self, notifications: Notifications, member: str) -> None:
        self._notifications = notifications
        self._member = member
        self._listener: Listener | None = None

    async def open(self) -> None:
        self._listener = await self._notifications.listen()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def notify(self, member: str, text: str) -> None:
        try:
            await self._notifications.send(member, text)
        except OrthancError as error:  # the index is unreachable: the hint is lost, as a datagram can be
            log.warning("wake-up hint to member %s not sent: %s", member, error)

    async def _hints(self) -> AsyncIterator[str]:
        listener = self._listener
        if listener is None:
            raise RuntimeError("the wake-ups are not open")
        while True:
            messages = await listener.receive()
            if messages is None:
                yield RESYNC
                continue
            for target, text in messages:
                if target in (self._member, ALL):
                    yield text

    def __aiter__(self) -> AsyncIterator[str]:
        return self._hints()
