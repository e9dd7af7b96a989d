"""Tracks when patients, studies and series become stable (StableAge)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ..dicom.ids import Level, OrthancIds

OnStable = Callable[[str, Level], Awaitable[None]]


class StabilityTracker:
    """A resource is unstable until StableAge seconds pass without a new instance.

    Kept in memory like Orthanc: after a restart everything is stable.
    """

    def __init__(self, stable_age: float, on_stable: OnStable) -> None:
        self._age = stable_age
        self._on_stable = on_stable
        self._deadlines: dict[str, tuple[float, Level]] = {}
        self._wakeup = trio.Event()

    def touch(self, ids: OrthancIds) -> None:
        deadline = trio.current_time() + self._age
        # A new deadline is never earlier than those already set: a tracker waiting for one of
        # them needs no wake-up (one per stored instance otherwise).
        idle = not self._deadlines
        for level in (Level.SERIES, Level.STUDY, Level.PATIENT):
            self._deadlines[ids[level]] = (deadline, level)
        if idle:
            self._wakeup.set()

    def forget(self, public_id: str) -> None:
        self._deadlines.pop(public_id, None)

    def is_stable(self, public_id: str) -> bool:
        return public_id not in self._deadlines

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            due = [(pid, lv) for pid, (deadline, lv) in self._deadlines.items() if deadline <= now]
            for public_id, level in sorted(due, key=lambda item: -item[1]):
                del self._deadlines[public_id]
                await self._on_stable(public_id, level)
            self._wakeup = trio.Event()
            next_deadline = min((d for d, _ in self._deadlines.values()), default=None)
            with trio.move_on_at(next_deadline if next_deadline is not None else float("inf")):
                await self._wakeup.wait()
