"""Tracks when patients, studies and series become stable (StableAge)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from ..clock import parse_orthanc_date
from ..dicom.ids import Level, OrthancIds
from ..errors import OrthancError
from ..storage.index import Index

log = logging.getLogger(__name__)

OnStable = Callable[[str, Level], Awaitable[None]]
# The unix time of a resource's latest instance as the shared index knows it (None: unknown).
LastArrival = Callable[[str], Awaitable[float | None]]
LAST_UPDATE = "LastUpdate"  # the metadata every level keeps: when its latest instance arrived, whole seconds
LAST_UPDATE_RESOLUTION = 1.0  # seconds: a LastUpdate may be this much earlier than the arrival it records
INDEX_RETRY = 1.0  # seconds before a resource is looked at again when the index could not be asked


async def last_arrival_in(index: Index, public_id: str) -> float | None:
    """When the latest instance of a resource arrived, through whichever process stored it."""
    record = await index.resource(public_id)
    text = record.metadata.get(LAST_UPDATE) if record is not None else None
    if text is None:
        return None
    try:
        moment = parse_orthanc_date(text)
    except ValueError:
        return None
    return moment.timestamp() + LAST_UPDATE_RESOLUTION


class StabilityTracker:
    """A resource is unstable until StableAge seconds pass without a new instance.

    Kept in memory like Orthanc: after a restart everything is stable. When several processes
    store into one index (members), each tracks the instances it received; ``last_arrival``
    then tells when the latest instance arrived through any of them, and a resource that
    received one since is not stable yet (its deadline moves). The index logs one Stable*
    change per quiet period, whichever process finds it first.
    """

    def __init__(self, stable_age: float, on_stable: OnStable, last_arrival: LastArrival | None = None) -> None:
        self._age = stable_age
        self._on_stable = on_stable
        self._last_arrival = last_arrival
        self._deadlines: dict[str, tuple[float, Level]] = {}
        # Resources found due whose Stable* change is being recorded: not stable until it is,
        # so that a client told IsStable finds the change in /changes.
        self._settling: set[str] = set()
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
        return public_id not in self._deadlines and public_id not in self._settling

    async def _arrived_since(self, public_id: str) -> float:
        """Seconds still to wait for a resource found due, because an instance arrived through
        another process meanwhile (0: stable now)."""
        if self._last_arrival is None:
            return 0.0
        last = await self._last_arrival(public_id)
        # Bounded by StableAge: a clock ahead on another machine cannot postpone it for ever.
        return 0.0 if last is None else min(self._age, max(0.0, last + self._age - time.time()))

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            due = [(pid, lv) for pid, (deadline, lv) in self._deadlines.items() if deadline <= now]
            for public_id, level in sorted(due, key=lambda item: -item[1]):
                del self._deadlines[public_id]
                self._settling.add(public_id)
                try:
                    later = await self._arrived_since(public_id)
                    if later <= 0:
                        await self._on_stable(public_id, level)
                except OrthancError as error:  # the index out of reach for a while: look again soon
                    log.warning("stability of %s not recorded yet: %s", public_id, error)
                    later = INDEX_RETRY
                finally:
                    self._settling.discard(public_id)
                if later > 0:
                    self._deadlines.setdefault(public_id, (trio.current_time() + later, level))
            self._wakeup = trio.Event()
            next_deadline = min((d for d, _ in self._deadlines.values()), default=None)
            with trio.move_on_at(next_deadline if next_deadline is not None else float("inf")):
                await self._wakeup.wait()
