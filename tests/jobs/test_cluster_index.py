"""The jobs table of a cluster in the index (SQLite, and PostgreSQL where said): migration, claims, leases and fenced writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.storage.index import Index
from node.storage.index.sqlite import SqliteIndex

TTL_MS = 60_000


async def test_an_index_made_before_the_cluster_columns_is_migrated(tmp_path: Path) -> None:
    """Jobs a single node saved keep what their forms say: only the unfinished one can be claimed."""
    old = sqlite3.connect(tmp_path / "index.sqlite")
    old.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
    saved = {
        "ended": '{"State": "Success"}',
        "cancelled": '{"State": "Failure", "ErrorCode": 37}',
        "paused": '{"State": "Paused", "Priority": 3}',
        "running": '{"State": "Running", "Priority": 2}',
        "unreadable": "{",
    }
    old.executemany("INSERT INTO jobs VALUES (?, ?)", saved.items())
    old.commit()
    old.close()
    index = SqliteIndex(tmp_path)
    try:
        assert await index.saved_jobs() == saved
        rows = {job_id: await index.job_row(job_id) for job_id in saved}
        states = {job_id: (row.state, row.priority) for job_id, row in rows.items() if row is not None}
        assert states == {
            "ended": ("Success", 0),
            "cancelled": ("Failure", 0),
            "paused": ("Paused", 3),
            "running": ("Pending", 2),
            "unreadable": ("Failure", 0),
        }
        assert all(row is not None and (row.owner, row.generation, row.command) == (None, 0, None) for row in rows.values())
        claimed = await index.claim_job("a-1", TTL_MS)
        assert claimed is not None and claimed.id == "running"
        assert await index.claim_job("a-1", TTL_MS) is None
    finally:
        await index.close()


async def test_jobs_saved_by_a_single_node_are_never_claimed_once_ended(any_index: Index) -> None:
    """SaveJobs' rows carry their state, on each backend (any_index)."""
    await any_index.save_jobs({"done": '{"State": "Success"}', "queued": '{"State": "Pending", "Priority": 4}'}, ())
    claimed = await any_index.claim_job("a-1", TTL_MS)
    assert claimed is not None and claimed.id == "queued"
    assert await any_index.claim_job("a-1", TTL_MS) is None
    await any_index.save_jobs({"done": '{"State": "Paused"}'}, ())
    row = await any_index.job_row("done")
    assert row is not None and row.state == "Paused"


async def test_claims_follow_priority_then_order_and_a_lost_lease_writes_nothing(any_index: Index) -> None:
    """On each backend (any_index)."""
    index = any_index
    for job_id, priority in (("low", 0), ("first-high", 5), ("second-high", 5)):
        await index.insert_job(job_id, "{}", state="Pending", priority=priority, owner=None, ttl_ms=TTL_MS)
    await index.insert_job("pinned", "{}", state="Pending", priority=9, owner="b-1", ttl_ms=TTL_MS)
    claimed = [await index.claim_job("a-1", TTL_MS) for _ in range(4)]
    assert [c.id if c else None for c in claimed] == ["first-high", "second-high", "low", None]
    pinned = await index.claim_job("b-1", TTL_MS)
    assert pinned is not None and (pinned.id, pinned.generation) == ("pinned", 1)

    assert await index.set_job_command("low", "cancel") == "a-1"
    leases = {lease.id: lease for lease in await index.renew_job_leases("a-1", TTL_MS)}
    assert leases.keys() == {"first-high", "second-high", "low"} and leases["low"].command == "cancel"
    assert await index.job_commands("a-1") == [("low", "cancel")]

    # The leases of a-1 expire: the reaper frees them, b-1 claims one, a-1's write is refused.
    await index.renew_job_leases("a-1", -1)
    assert await index.reap_job_leases(TTL_MS) == 3
    again = await index.claim_job("b-1", TTL_MS)
    assert again is not None and (again.id, again.generation) == ("first-high", 2)
    lost = await index.write_owned_job(
        "first-high", "a-1", 1, "{}", state="Success", owner_after=None, ttl_ms=TTL_MS, requeue=True
    )
    assert not lost
    assert await index.write_owned_job(
        "first-high", "b-1", 2, '{"done": 1}', state="Success", owner_after=None, ttl_ms=TTL_MS, requeue=True
    )
    assert await index.job_counts() == {"Pending": 2, "Running": 1, "Success": 1}
    assert await index.trim_job_history(0) == ['{"done": 1}']
