"""Socket options that keep small DICOM exchanges from waiting on delayed ACKs, and listening
sockets inherited from the supervisor of the members."""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Protocol

import trio

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _Configurable(Protocol):
    """A stdlib or Trio socket."""

    def setsockopt(self, level: int, option: int, value: Any, /) -> None: ...


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


async def listeners_of(fd: int | None, port: int, host: str) -> list[trio.SocketListener]:
    """The listening socket handed down as file descriptor ``fd`` (already bound and listening,
    one of the group sharing the port), or new ones bound to ``host``:``port`` when there is none."""
    if fd is None:
        return await trio.open_tcp_listeners(port, host=host)
    return [trio.SocketListener(trio.socket.from_stdlib_socket(socket.socket(fileno=fd)))]
