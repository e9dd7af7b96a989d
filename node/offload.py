"""Short blocking work (disk, parsing, compression) run off the event loop.

Under a virtual clock (the tests of timed behaviour) a task waiting on a
thread counts as blocked, so an autojumping MockClock would let virtual time
run while the thread works and outcomes would depend on thread timing. There
the same call runs inline: identical code, virtual time standing still.
Network calls that may block for long (pynetdicom) use trio.to_thread directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import trio
from trio.testing import MockClock

T = TypeVar("T")


def under_virtual_clock() -> bool:
    return isinstance(trio.lowlevel.current_clock(), MockClock)


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (inline under a virtual clock)."""
    if under_virtual_clock():
        await trio.lowlevel.cancel_shielded_checkpoint()
        return fn(*args)
    return await trio.to_thread.run_sync(fn, *args)
