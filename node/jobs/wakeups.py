"""Wake-up hints between the members of one node: "a command waits for you", "a job is pending".

A hint only says where to look: the index holds the truth, and every member also finds it there
on its own (its lease renewals return its commands, its idle workers look for Pending jobs
every second), so a hint lost on the way costs time, never a job.

A member too busy to read its hints (or paused) lets them queue up to the kernel's limit; the
hints sent to it then are refused at once, never waited on: a sender waiting for room held up a
job's end, and two senders waiting on one socket failed, which stopped the jobs engine. The
member learns of the refusals when it reads its queue again, found full, and looks at
everything in the index (:data:`RESYNC`).

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
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

log = logging.getLogger(__name__)

ALL = "*"  # every live member, the sender included
RESYNC = "resync"  # received, not sent: hints may have been lost, look at everything in the index
HINT_MAX_BYTES = 512  # a hint is a word and a job ID; anything longer is not ours
_GONE = (errno.ECONNREFUSED, errno.ENOENT)  # the member stopped since the index listed it
# The datagrams a socket queues before refusing more (Linux's net.unix.max_dgram_qlen, read
# when a socket is made), and its usual value, where it cannot be read.
_QUEUE_LIMIT_SETTING = "/proc/sys/net/unix/max_dgram_qlen"
_DEFAULT_QUEUE_LIMIT = 10


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


def datagram_queue_limit() -> int:
    """How many hints a member's socket queues: it refuses more once it holds one beyond that."""
    try:
        with open(_QUEUE_LIMIT_SETTING, encoding="ascii") as setting:
            return int(setting.read())
    except (OSError, ValueError):
        return _DEFAULT_QUEUE_LIMIT


def socket_name(scope: str, member: str) -> bytes:
    """The abstract address of a member: one namespace per index, so two nodes never cross."""
    digest = hashlib.sha1(scope.encode("utf-8")).hexdigest()[:12]
    return f"\0dicom-node/{digest}/{member}".encode()


class UnixDatagramWakeUps(WakeUps):
    """``scope`` names the shared index (its path); ``members`` lists the live members for :data:`ALL`."""

    def __init__(self, scope: str, member: str, members: Callable[[], Awaitable[list[str]]]) -> None:
        self._scope = scope
        self._members = members
        # Made by open(), nothing to leak before: the socket this member's hints come to, and
        # one that sends without ever waiting (see the module's docstring).
        self._socket: trio.socket.SocketType | None = None
        self._sender: socket.socket | None = None
        self._queue_limit = _DEFAULT_QUEUE_LIMIT
        self._address = socket_name(scope, member)

    async def open(self) -> None:
        self._queue_limit = datagram_queue_limit()
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            await sock.bind(self._address)
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender.setblocking(False)

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    async def notify(self, member: str, text: str) -> None:
        targets = await self._members() if member == ALL else [member]
        sender, payload = self._sender, text.encode()
        if sender is None:  # not open, or closed meanwhile: the hint is lost, the index holds the truth
            return
        for target in targets:
            try:
                sender.sendto(payload, socket_name(self._scope, target))
            except BlockingIOError:  # its queue is full: it will know (see _hints)
                continue
            except OSError as error:
                if error.errno not in _GONE:
                    log.warning("wake-up hint to member %s not sent: %s", target, error)

    async def _hints(self) -> AsyncIterator[str]:
        """The hints, read a queue at a time: a queue found full may have refused hints, and
        stands for them all as one RESYNC (it holds one beyond the limit before it refuses any)."""
        sock = self._socket
        if sock is None:
            raise RuntimeError("the wake-ups are not open")
        while True:
            queued = [await sock.recv(HINT_MAX_BYTES)]
            while len(queued) <= self._queue_limit and (data := _queued_hint(sock)) is not None:
                queued.append(data)
            if len(queued) > self._queue_limit:
                yield RESYNC
                continue
            for data in queued:
                yield data.decode("utf-8", "replace")

    def __aiter__(self) -> AsyncIterator[str]:
        return self._hints()


def _queued_hint(sock: trio.socket.SocketType) -> bytes | None:
    """The next hint already queued on ``sock``, without waiting; None if none is."""
    try:
        return os.read(sock.fileno(), HINT_MAX_BYTES)
    except BlockingIOError:
        return None
