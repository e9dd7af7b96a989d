"""The statements that make the jobs table the cluster's queue: claims, leases, fenced writes, members.

Every backend runs these same texts, rendered by its :class:`~.dialect.Dialect`: two tokens
differ, ``{SKIP_LOCKED}`` (what passes over the rows other claims hold: nothing on SQLite, whose
claim runs inside BEGIN IMMEDIATE, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and ``{NOW_MS}`` (the
database's own clock in milliseconds, so that every member compares leases to one clock).
Parameters are named (``:name``); ``CAST`` is written out, never ``::``.

The rules the statements keep:
- A row's ``owner`` is the member incarnation that holds its lease; ``generation`` grows at each
  claim. An owner writes a row only while both are still its own (a fenced write): a write that
  changes no row means the lease was lost, and the job must stop where it runs without writing.
- A Pending row with an owner is pinned to it: only that member can run it (a job whose state
  cannot be saved, such as an archive). Its lease is renewed like a running one's, and once the
  member is gone the reaper frees it.
- ``seq`` orders Pending rows (submission or requeue order) and ended rows (end order, for the
  history trim).
"""

from __future__ import annotations

from dataclasses import dataclass

ENDED_STATES = "('Success', 'Failure')"
NEXT_SEQ = "(SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)"

# Columns that the cluster adds to the (id, data) jobs table of SaveJobs: each with a default,
# so an index made before them is migrated with ALTER TABLE ... ADD COLUMN.
JOB_COLUMNS: tuple[tuple[str, str], ...] = (
    ("state", "TEXT NOT NULL DEFAULT 'Pending'"),
    ("priority", "INTEGER NOT NULL DEFAULT 0"),
    ("seq", "BIGINT NOT NULL DEFAULT 0"),
    ("owner", "TEXT"),
    ("generation", "INTEGER NOT NULL DEFAULT 0"),
    ("lease_until", "BIGINT NOT NULL DEFAULT 0"),
    ("command", "TEXT"),
)
JOB_INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (state, priority DESC, seq)",
    "CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner)",
)
MEMBERS_TABLE = (
    "CREATE TABLE IF NOT EXISTS members (id TEXT PRIMARY KEY, pid INTEGER NOT NULL, "
    "started BIGINT NOT NULL, heartbeat BIGINT NOT NULL)"
)
_ROW = "id, data, state, priority, seq, owner, generation, lease_until, command"
_FREED = "state = CASE WHEN state IN ('Running', 'Retry') THEN 'Pending' ELSE state END, owner = NULL"
# A write of a new state consumes the command it carries out, and only that one: an end carries out
# both, Paused a pause. A command asked just before a write of Pending or Retry stays for whoever
# runs the job next (the claim delivers it).
_CONSUMED = (
    f"command = CASE WHEN :state IN {ENDED_STATES} OR (:state = 'Paused' AND command = 'pause') "
    f"THEN NULL ELSE command END"
)


@dataclass(frozen=True)
class LeaseStatements:
    insert: str
    claim: str
    renew: str
    reap: str
    release_member: str
    release_owned: str
    fenced_write: str
    compare_and_set: str
    set_priority: str
    set_command: str
    commands_of: str
    row: str
    rows: str
    ids: str
    ids_in_state: str
    counts: str
    trim_history: str
    delete_ended: str
    register_member: str
    heartbeat: str
    unregister_member: str
    live_members: str
    forget_members: str


STATEMENTS = LeaseStatements(
    insert=(
        f"INSERT INTO jobs ({_ROW}) VALUES (:id, :data, :state, :priority, {NEXT_SEQ}, :owner, 0, "
        f"{{NOW_MS}} + :ttl, NULL)"
    ),
    # Highest priority first, then submission order; a pinned row only by its owner.
    claim=(
        "UPDATE jobs SET state = 'Running', owner = :me, generation = generation + 1, "
        "lease_until = {NOW_MS} + :ttl WHERE id = (SELECT id FROM jobs WHERE state = 'Pending' "
        "AND (owner IS NULL OR owner = :me) ORDER BY priority DESC, seq LIMIT 1 {SKIP_LOCKED}) "
        "RETURNING id, generation, data, priority, command"
    ),
    # Every row the member holds, running or pinned; the result also delivers the commands.
    renew=(
        f"UPDATE jobs SET lease_until = {{NOW_MS}} + :ttl WHERE owner = :me AND state NOT IN {ENDED_STATES} "
        f"RETURNING id, generation, command"
    ),
    # Idempotent, by any member: rows whose owner stopped renewing are free again.
    reap=(
        f"UPDATE jobs SET {_FREED} "
        f"WHERE owner IS NOT NULL AND state NOT IN {ENDED_STATES} AND lease_until < {{NOW_MS}}"
    ),
    release_member=f"UPDATE jobs SET {_FREED} WHERE owner = :me AND state NOT IN {ENDED_STATES}",
    # One row given back by its owner, fenced like a write: a row claimed since by another stays theirs.
    release_owned=(
        f"UPDATE jobs SET {_FREED} "
        f"WHERE id = :id AND owner = :me AND generation = :generation AND state NOT IN {ENDED_STATES}"
    ),
    # The owner's write of progress or of a new state.
    fenced_write=(
        f"UPDATE jobs SET data = :data, state = :state, owner = :owner_after, lease_until = {{NOW_MS}} + :ttl, "
        f"{_CONSUMED}, seq = CASE WHEN :requeue = 1 THEN {NEXT_SEQ} ELSE seq END "
        f"WHERE id = :id AND owner = :me AND generation = :generation"
    ),
    # A user action on a row nobody runs: it applies only if the row is still as it was read.
    compare_and_set=(
        f"UPDATE jobs SET data = :data, state = :state, priority = :priority, {_CONSUMED}, "
        f"seq = CASE WHEN :requeue = 1 THEN {NEXT_SEQ} ELSE seq END "
        f"WHERE id = :id AND state = :expected_state AND generation = :generation "
        f"AND COALESCE(owner, '') = COALESCE(:expected_owner, '')"
    ),
    # The priority column alone (the truth of a job's priority), so that it never races the data the
    # owner writes; a Pending row goes last among its new equals, as if submitted now.
    set_priority=(
        f"UPDATE jobs SET priority = :priority, seq = CASE WHEN state = 'Pending' THEN {NEXT_SEQ} ELSE seq END "
        f"WHERE id = :id AND state NOT IN {ENDED_STATES}"
    ),
    set_command=(
        f"UPDATE jobs SET command = :command WHERE id = :id AND owner IS NOT NULL "
        f"AND state NOT IN {ENDED_STATES} RETURNING owner"
    ),
    commands_of="SELECT id, command FROM jobs WHERE owner = :me AND command IS NOT NULL",
    row=f"SELECT {_ROW} FROM jobs WHERE id = :id",
    rows=f"SELECT {_ROW} FROM jobs ORDER BY id",
    ids="SELECT id FROM jobs ORDER BY id",
    ids_in_state="SELECT id FROM jobs WHERE state = :state ORDER BY priority DESC, seq",
    counts="SELECT state, COUNT(*) FROM jobs GROUP BY state",
    # The ended rows past the newest :keep ones (by end order) go, with their data for their outputs.
    trim_history=(
        f"DELETE FROM jobs WHERE state IN {ENDED_STATES} AND seq <= (SELECT seq FROM jobs "
        f"WHERE state IN {ENDED_STATES} ORDER BY seq DESC LIMIT 1 OFFSET :keep) RETURNING id, data"
    ),
    delete_ended=f"DELETE FROM jobs WHERE id = :id AND state IN {ENDED_STATES} RETURNING data",
    register_member=(
        "INSERT INTO members (id, pid, started, heartbeat) VALUES (:me, :pid, {NOW_MS}, {NOW_MS}) "
        "ON CONFLICT (id) DO UPDATE SET pid = :pid, heartbeat = {NOW_MS}"
    ),
    heartbeat="UPDATE members SET heartbeat = {NOW_MS} WHERE id = :me",
    unregister_member="DELETE FROM members WHERE id = :me",
    live_members="SELECT id FROM members WHERE heartbeat >= {NOW_MS} - :max_age ORDER BY id",
    forget_members="DELETE FROM members WHERE heartbeat < {NOW_MS} - :max_age",
)
