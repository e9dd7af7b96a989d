"""Wake-up hints between the members of one node: "a command waits for you", "a job is pending".

A hint only says where to look: the index holds the truth, and every member also finds it there
on its own (its lease renewals return its commands, its idle workers look for Pending jobs
every second), so a hint lost on the way costs time, never a job.

:class:`WakeUps` is what the engine uses; :class:`UnixDatagramWakeUps` carries the hints between
the members of one machine, one datagram socket each in Linux's abstract namespace (no file to
clean up after a crash). Members on several machines use the index's own messages instead
(:mod:`.index_wakeups`).
"""

from __future__ import annotations

import abc
import errno
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

log = logging.getLogger(__name__)

ALL = "*"  # every live member, the sender included
RESYNC = "resync"  # received, not sent: hints may have been lost, look at everything in the index
HINT_MAX_BYTES = 512  # a hint is a word and a job ID; anything longer is not ours
HINT_SEND_TIMEOUT = 0.05  # a member too busy to take a hint finds the truth in the index anyway
_GONE = (errno.ECONNREFUSED, errno.ENOENT)  # the member stopped since the index listed it


class WakeUps(abc.ABC):
    """Hints to one member or to all; ``async for hint in channel`` receives this member's
    (and :data:`RESYNC` when some may have been lost). Open before use, close after."""

    # The index carries the hints: one about a command is better sent by the transaction that sets it.
    through_index = False

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def notify(self, member: str, text: str) -> None:
        """Send ``text`` to ``member`` (or to :data:`ALL`); a member that is gone is skipped."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[str]: ...


def socket_name(scope: str, member: str) -> bytes:
    """The abstract address of a member: one namespace per index, so two nodes never cross."""
    digest = hashlib.sha1(scope.encode("utf-8")).hexdigest()[:12]
    return f"\0dicom-node/{digest}/{member}".encode()


class UnixDatagramWakeUps(WakeUps):
    """``scope`` names the shared index (its path); ``members`` lists the live members for :data:`ALL`."""

    def __init__(self, scope: str, member: str, members: Callable[[], Awaitable[list[str]]]) -> None:
        self._scope = scope
        self._members = members
        self._socket = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._address = socket_name(scope, member)

    async def open(self) -> None:
        await self._socket.bind(self._address)

    async def close(self) -> None:
        self._socket.close()

    async def notify(self, member: str, text: str) -> None:
        payload = text.encode()
        targets = await self._members() if member == ALL else [member]
        for target in targets:
            try:
                with trio.move_on_after(HINT_SEND_TIMEOUT):
                    await self._socket.sendto(payload, socket_name(self._scope, target))
            except OSError as error:
                if error.errno not in _GONE:
                    log.warning("wake-up hint to member %s not sent: %s", target, error)

    async def _hints(self) -> AsyncIterator[str]:
        while True:
            data = await self._socket.recv(HINT_MAX_BYTES)
            yield data.decode("utf-8", "replace")

    def __aiter__(self) -> AsyncIterator[str]:
        return self._hints()
