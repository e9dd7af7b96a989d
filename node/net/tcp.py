"""Socket options that keep small DICOM exchanges from waiting on delayed ACKs."""

from __future__ import annotations

import contextlib
import socket

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def set_no_delay(sock: socket.socket | None) -> None:
    """Disable Nagle: pynetdicom never does, and DCMTK peers then stall 40 ms per C-STORE."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return
    rearm_quick_ack(sock)


def rearm_quick_ack(sock: socket.socket | None) -> None:
    """Linux clears TCP_QUICKACK after use; re-arm it after each read."""
    if sock is None or _QUICKACK is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
