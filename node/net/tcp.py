"""Socket options that keep small DICOM exchanges from waiting on delayed ACKs."""

from __future__ import annotations

import contextlib
import socket
from typing import Any, Protocol

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
