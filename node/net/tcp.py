"""Socket options that keep small DICOM exchanges from waiting on delayed ACKs, reads of what a
socket holds without a pass of Trio's scheduler, and listening sockets inherited from the
supervisor of the members, with the gate their first accepts wait for."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol

import trio

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _Configurable(Protocol):
    """A stdlib or Trio socket."""

    def setsockopt(self, level: int, option: int, value: Any, /) -> None: ...


def open_descriptor(sock: trio.socket.SocketType) -> int:
    """The socket's descriptor; Trio's error for a socket closed meanwhile (by another task)."""
    descriptor = sock.fileno()
    if descriptor < 0:
        raise trio.ClosedResourceError("the socket was closed")
    return descriptor


def read_ready(sock: trio.socket.SocketType, size: int) -> bytes | None:
    """What ``sock`` holds now, up to ``size`` bytes (``b""`` once the peer closed its side), or
    None when nothing came yet. One system call and no scheduler pass: a request-and-answer
    exchange waits for each answer, and Trio's stream and socket wrappers around that one read
    cost as much as the read. Raises OSError when the connection broke."""
    try:
        return os.read(open_descriptor(sock), size)
    except BlockingIOError:
        return None


def set_no_delay(sock: _Configurable) -> None:
    """Disable Nagle: DCMTK peers otherwise stall 40 ms per C-STORE, waiting for a delayed ACK."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rearm_quick_ack(sock)


def rearm_quick_ack(sock: _Configurable) -> None:
    """Linux clears TCP_QUICKACK after use; re-arm it after each read."""
    if _QUICKACK is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


# Before each accept from the socket all members share, a member waits this long per connection it
# holds, the one it just accepted included (up to the cap), so that an idler member takes the next:
# the kernel would otherwise hand a burst of keep-alive connections to whichever woke first.
ACCEPT_PAUSE_PER_CONNECTION = 0.001
ACCEPT_PAUSE_MAX = 0.004


class StartGate:
    """What a member's listeners wait for before their first accept: the read end of a pipe whose
    write end the supervisor closes once every member is ready (its end makes it readable).

    Without it, the member that started first would take every connection opened meanwhile,
    and keep-alive connections stay where they were accepted: clients that connect as soon as
    the port answers would all be served by one member while the others idle. Meanwhile the
    connections wait in the listening socket's queue, none is refused."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._open = False
        self._lock = trio.Lock()  # one listener waits on the pipe, the others for the lock

    async def wait(self) -> None:
        if self._open:
            return
        async with self._lock:
            if not self._open:
                await trio.lowlevel.wait_readable(self._fd)
                os.close(self._fd)
                self._open = True


class PacedListener(trio.abc.Listener[trio.SocketStream]):
    """The listening socket of the members' group, accepted from once the members' ``gate`` is
    open, with a pause that grows with the connections this member holds (see
    ACCEPT_PAUSE_PER_CONNECTION) when ``held`` counts them."""

    def __init__(self, listener: trio.SocketListener, held: Callable[[], int] | None, gate: StartGate | None) -> None:
        self.socket = listener.socket
        self._listener = listener
        self._held = held
        self._gate = gate

    async def accept(self) -> trio.SocketStream:
        if self._gate is not None:
            await self._gate.wait()
        if self._held is not None:
            # The connection accepted last may not be counted yet: its handler starts after this.
            await trio.sleep(min((self._held() + 1) * ACCEPT_PAUSE_PER_CONNECTION, ACCEPT_PAUSE_MAX))
        return await self._listener.accept()

    async def aclose(self) -> None:
        await self._listener.aclose()


async def listeners_of(
    fd: int | None, port: int, host: str, *, held: Callable[[], int] | None = None, gate: StartGate | None = None
) -> list[trio.SocketListener | PacedListener]:
    """The listening socket handed down as file descriptor ``fd`` (already bound and listening,
    the one every member of the group accepts from once ``gate`` opens; paced by ``held``, the
    connections this member holds, when given), or new ones bound to ``host``:``port`` when
    there is none."""
    if fd is None:
        return list(await trio.open_tcp_listeners(port, host=host))
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(socket.socket(fileno=fd)))
    return [PacedListener(listener, held, gate)] if held is not None or gate is not None else [listener]
