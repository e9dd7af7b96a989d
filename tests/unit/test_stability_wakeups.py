"""The stability tracker, on a virtual clock: a resource becomes stable StableAge seconds after
its last new instance, whether the tracker was idle or already waiting for an earlier resource
when that instance came (it is not woken for each instance)."""

from __future__ import annotations

import trio
import trio.testing

from node.dicom.ids import Level
from node.services.stability import StabilityTracker

AGE = 60.0


def ids(patient: str, study: str, series: str) -> tuple[str, str, str, str]:
    return patient, study, series, f"{series}-instance"


async def test_resources_become_stable_after_their_last_instance(autojump_clock: trio.testing.MockClock) -> None:
    stable: list[tuple[str, Level, float]] = []

    async def on_stable(public_id: str, level: Level) -> None:
        stable.append((public_id, level, trio.current_time()))

    tracker = StabilityTracker(AGE, on_stable)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tracker.run)
        start = trio.current_time()
        tracker.touch(ids("p1", "s1", "se1"))  # the tracker was idle
        await trio.sleep(30)
        tracker.touch(ids("p1", "s1", "se1"))  # a later instance of the same series: stable 60 s after this one
        await trio.sleep(10)
        tracker.touch(ids("p2", "s2", "se2"))  # while the tracker waits for the first series
        assert not tracker.is_stable("se1") and not tracker.is_stable("se2")
        await trio.sleep(100)
        assert tracker.is_stable("se1") and tracker.is_stable("p2")
        tracker.touch(ids("p3", "s3", "se3"))  # idle again
        await trio.sleep(AGE + 1)
        nursery.cancel_scope.cancel()
    times = {public_id: round(at - start) for public_id, _, at in stable}
    assert times == {"se1": 90, "s1": 90, "p1": 90, "se2": 100, "s2": 100, "p2": 100, "se3": 200, "s3": 200, "p3": 200}
    # Within a batch that comes due together, the lower levels first.
    assert [level for public_id, level, _ in stable if public_id.endswith("1")] == [
        Level.SERIES,
        Level.STUDY,
        Level.PATIENT,
    ]
