"""Short blocking work (disk, parsing, compression) run off the event loop.

Under a virtual clock (the tests of timed behaviour) a task waiting on a
thread counts as blocked, so an autojumping MockClock would let virtual time
run while the thread works and outcomes would depend on thread timing. There
the same call runs inline: identical code, virtual time standing still.

This is also where the work of one request or job meets the node: a call that
exhausts the stack or the memory fails that caller with an Orthanc error, and the
node, whose own state such a failure does not touch, goes on serving the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import trio
from trio.testing import MockClock

from .errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)

T = TypeVar("T")


def under_virtual_clock() -> bool:
    return isinstance(trio.lowlevel.current_clock(), MockClock)


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (inline under a virtual clock).

    RecursionError and MemoryError become OrthancError (errors -1 and 4); anything else
    goes through unchanged.
    """
    try:
        if under_virtual_clock():
            await trio.lowlevel.cancel_shielded_checkpoint()
            return fn(*args)
        return await trio.to_thread.run_sync(fn, *args)
    except RecursionError:
        log.exception("%r exhausted the stack", fn)
        raise OrthancError(ErrorCode.INTERNAL_ERROR, "The data is nested too deeply to be processed") from None
    except MemoryError:
        log.exception("%r exhausted the memory", fn)
        raise OrthancError(ErrorCode.NOT_ENOUGH_MEMORY) from None
