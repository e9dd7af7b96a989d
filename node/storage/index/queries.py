"""The index's reads and writes, written once for every SQL backend.

Each function runs on a blocking connection (sqlite3's or psycopg's), in the transaction its
backend opened when it needs one, and speaks through :class:`Sql`, which renders each
statement in the backend's :class:`~.dialect.Dialect`. The backends keep only what truly
differs: how a call reaches its thread and connection, transactions, the schema, and errors.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from ...dicom.ids import LEVELS, Level
from ...errors import ErrorCode, OrthancError
from .base import (
    ATTACHMENT_DICOM,
    RECOVERED_ORIGIN,
    Attachment,
    Change,
    DeleteResult,
    DescendantSummary,
    NewInstance,
    ResourceRecord,
    StoreResult,
)
from .dialect import Dialect

_STATUS_NEW = {Level.PATIENT: "NewPatient", Level.STUDY: "NewStudy", Level.SERIES: "NewSeries"}
SUMMARY_CHUNK = 500  # resources per summary query: well below SQLite's limit on parameters
_IDENTIFIER_TAGS = (
    "((r.level = 0 AND i.tag = '0010,0020') OR (r.level = 1 AND i.tag = '0020,000d') "
    "OR (r.level = 2 AND i.tag = '0020,000e') OR (r.level = 3 AND i.tag = '0008,0018'))"
)
_KEPT_SAVED_STATES = ("Success", "Failure", "Paused")  # a saved job's states that a cluster keeps as they are
_UNREADABLE_JOB = ("Failure", 0)
_STABLE = "Stable"  # the changes logged once a resource is quiet: StablePatient, StableStudy, StableSeries
_CHANGE_COLUMNS = "seq, change_type, public_id, level, date"
# An Attachment's fields, of the attachments table as ``a``.
_ATTACHMENT_COLUMNS = (
    "a.content_type, a.uuid, a.uncompressed_size, a.compressed_size, a.uncompressed_md5, a.compressed_md5, "
    "a.compression"
)
# A row that already holds the value is left as it is: the parents' LastUpdate, written with
# each instance, changes once a second at most (PostgreSQL would write a new version of it).
_UPSERT_METADATA = (
    "INSERT INTO metadata(internal_id, name, value) VALUES (?,?,?) "
    "ON CONFLICT(internal_id, name) DO UPDATE SET value = excluded.value WHERE metadata.value <> excluded.value"
)
# The subtree of one resource, itself included: its IDs (seeded with the resource's).
_SUBTREE = (
    "WITH RECURSIVE tree(id) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT r.internal_id FROM resources r JOIN tree ON r.parent = tree.id) "
)


class ConcurrentChange(Exception):
    """Another writer changed rows this transaction relied on: the transaction is to be tried
    again (only where writers overlap: processes sharing a PostgreSQL index)."""


# Parameters: positional (``?``) or named (``:name``).
Params = Sequence[Any] | Mapping[str, Any]


class Sql:
    """One connection, its statements rendered in its dialect."""

    def __init__(self, db: Any, dialect: Dialect) -> None:
        self.db = db  # sqlite3.Connection or psycopg.Connection: both execute(text, params) -> cursor
        self.dialect = dialect

    def rows(self, text: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self.db.execute(self.dialect.sql(text), params).fetchall())

    def row(self, text: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = self.db.execute(self.dialect.sql(text), params).fetchone()
        return None if row is None else tuple(row)

    def run(self, text: str, params: Params = ()) -> int:
        """A statement that returns no rows: how many it changed."""
        return int(self.db.execute(self.dialect.sql(text), params).rowcount)

    def run_many(self, text: str, params: Iterable[Sequence[Any]]) -> None:
        rows = list(params)
        if rows:
            self.db.cursor().executemany(self.dialect.sql(text), rows)

    def marks(self, count: int) -> str:
        return ",".join("?" * count)


def returned_rows(sql: Sql, text: str, params: Params) -> list[tuple[Any, ...]]:
    """One statement that returns rows (a SELECT, or a write with RETURNING)."""
    return sql.rows(text, params)


def changed_rows(sql: Sql, text: str, params: Params) -> int:
    """One statement that returns no rows: how many it changed."""
    return sql.run(text, params)


def series_status(expected: int | None, indexes: list[str | None]) -> str:
    """As Orthanc computes it from the expected count and the IndexInSeries of the instances:
    Unknown (no expected count, or an index that is not a number), Inconsistent (an index out of
    range or repeated), Complete (every index seen) or Missing. Instances without an index are
    left out."""
    if expected is None or expected < 0:
        return "Unknown"
    seen: set[int] = set()
    for text in indexes:
        if text is None:
            continue
        try:
            value = int(text)
        except ValueError:
            return "Unknown"
        if value < 1 or value > expected or value in seen:
            return "Inconsistent"
        seen.add(value)
    return "Complete" if len(seen) == expected else "Missing"


def _change(row: Sequence[Any]) -> Change:
    return Change(int(row[0]), row[1], row[2], Level(row[3]), row[4])


# -- lookups ---------------------------------------------------------------
def internal(sql: Sql, public_id: str, level: Level | None = None, *, lock: bool = False) -> tuple[int, Level] | None:
    """The internal ID and level of a resource (``lock``: its row locked until the transaction ends)."""
    text = "SELECT internal_id, level FROM resources WHERE public_id = ?"
    row = sql.row(f"{text} {{LOCK_ROW}}" if lock else text, (public_id,))
    if row is None or (level is not None and row[1] != level):
        return None
    return int(row[0]), Level(row[1])


def _known(sql: Sql, public_ids: Sequence[str]) -> dict[str, int]:
    return {
        r[0]: int(r[1])
        for r in sql.rows(
            f"SELECT public_id, internal_id FROM resources WHERE public_id IN ({sql.marks(len(public_ids))})",
            public_ids,
        )
    }


# -- ingest ------------------------------------------------------------------
def _recovered(sql: Sql, internal_id: int) -> bool:
    """Whether the instance was indexed again from its file after a crash (see RECOVERED_ORIGIN)."""
    return (
        sql.row(
            "SELECT 1 FROM metadata WHERE internal_id = ? AND name = 'Origin' AND value = ?",
            (internal_id, RECOVERED_ORIGIN),
        )
        is not None
    )


def _add_resource(sql: Sql, new: NewInstance, level: Level, parent: int | None) -> tuple[int, bool]:
    """The internal ID of one level of a new instance, and whether this call created it. Another
    writer may create the same resource meanwhile (other processes sharing a PostgreSQL index):
    its row is then the one kept, this one dropped."""
    patient_tags = new.tags[Level.PATIENT] if level == Level.STUDY else {}
    public_id = new.ids[level]
    row = sql.row(
        "INSERT INTO resources(public_id, level, parent, main_tags, patient_tags) VALUES (?,?,?,?,?) "
        "ON CONFLICT(public_id) DO NOTHING RETURNING internal_id",
        (public_id, int(level), parent, json.dumps(new.tags[level]), json.dumps(patient_tags)),
    )
    if row is None:
        found = internal(sql, public_id)
        if found is None:  # created then deleted by others meanwhile: the transaction is retried
            raise ConcurrentChange(f"{public_id} created and removed meanwhile")
        return found[0], False
    created = int(row[0])
    sql.run_many(
        "INSERT INTO identifiers(internal_id, tag, value) VALUES (?,?,?)",
        [(created, tag, value) for tag, value in new.identifiers[level].items()],
    )
    return created, True


def insert_instance(sql: Sql, new: NewInstance, overwrite: bool) -> StoreResult:
    """The rows of one new instance, inside the caller's transaction."""
    result = StoreResult(already_stored=False)
    # One query for the four levels: the IDs are hashes, distinct across levels.
    known = _known(sql, new.ids)
    existing = known.pop(new.ids[3], None)
    if existing is not None:
        if not overwrite and not _recovered(sql, existing):
            return StoreResult(already_stored=True)
        # Replaced as a deletion then a store: ancestors left empty go too, and come back as new.
        _, result.removed_files = delete_rows(sql, existing)
        known = _known(sql, new.ids[:3])
    parent: int | None = None
    internal_ids: dict[Level, int] = {}
    for level in LEVELS:
        internal_id = known.get(new.ids[level])
        if internal_id is None:
            internal_id, created = _add_resource(sql, new, level, parent)
            if created and level != Level.INSTANCE:
                result.created.append(level)
            elif not created and level == Level.INSTANCE:  # stored meanwhile by another writer
                return StoreResult(already_stored=True)
        internal_ids[level] = internal_id
        parent = internal_id
    instance = internal_ids[Level.INSTANCE]
    a = new.attachment
    sql.run(
        "INSERT INTO attachments VALUES (?,?,?,?,?,?,?,?)",
        (instance, a.content_type, a.uuid, a.compressed_size, a.uncompressed_size, a.compression,
         a.uncompressed_md5, a.compressed_md5),
    )  # fmt: skip
    rows = [(instance, k, v) for k, v in new.metadata.items()]
    series = internal_ids[Level.SERIES]
    if Level.SERIES in result.created:  # a series keeps what its first instance said of it
        rows += [(series, k, v) for k, v in new.series_metadata.items()]
    rows += [(internal_ids[lv], "LastUpdate", new.last_update) for lv in (Level.PATIENT, Level.STUDY, Level.SERIES)]
    rows += [(internal_ids[lv], k, v) for lv, values in new.parent_metadata.items() for k, v in values.items()]
    sql.run_many(_UPSERT_METADATA, rows)
    changes = [("NewInstance", new.ids[3], Level.INSTANCE)]
    changes += [(_STATUS_NEW[lv], new.ids[lv], lv) for lv in sorted(result.created, reverse=True)]
    # Complete as this instance counts the series' instances, whatever the series' own count says.
    if new.expected_instances and series_status(new.expected_instances, _indexes(sql, series)) == "Complete":
        result.series_completed = True
        changes.append(("CompletedSeries", new.ids[2], Level.SERIES))
    sql.run_many(
        "INSERT INTO changes(change_type, public_id, level, date) VALUES (?,?,?,?)",
        [(kind, public, int(lv), new.last_update) for kind, public, lv in changes],
    )
    return result


def _indexes(sql: Sql, series: int) -> list[str | None]:
    """The IndexInSeries of every instance of a series (None where it has none)."""
    return [
        r[0]
        for r in sql.rows(
            "SELECT m.value FROM resources r LEFT JOIN metadata m "
            "ON m.internal_id = r.internal_id AND m.name = 'IndexInSeries' WHERE r.parent = ?",
            (series,),
        )
    ]


def status_of_series(sql: Sql, public_id: str) -> str:
    found = internal(sql, public_id, Level.SERIES)
    if found is None:
        return "Unknown"
    expected = sql.row(
        "SELECT value FROM metadata WHERE internal_id = ? AND name = 'ExpectedNumberOfInstances'", (found[0],)
    )
    try:
        count = int(expected[0]) if expected else None
    except ValueError:
        count = None
    return series_status(count, _indexes(sql, found[0]))


def set_main_tags(
    sql: Sql, instance: str, tags: dict[Level, dict[str, str]], identifiers: dict[Level, dict[str, str]]
) -> None:
    found = internal(sql, instance, Level.INSTANCE)
    internal_id: int | None = found[0] if found else None
    while internal_id is not None:
        row = sql.row("SELECT level, parent FROM resources WHERE internal_id = ?", (internal_id,))
        assert row is not None  # the parent of a row that exists, in the same transaction
        level, parent = Level(row[0]), row[1]
        patient_tags = tags[Level.PATIENT] if level == Level.STUDY else {}
        sql.run(
            "UPDATE resources SET main_tags = ?, patient_tags = ? WHERE internal_id = ?",
            (json.dumps(tags[level]), json.dumps(patient_tags), internal_id),
        )
        sql.run("DELETE FROM identifiers WHERE internal_id = ?", (internal_id,))
        sql.run_many(
            "INSERT INTO identifiers(internal_id, tag, value) VALUES (?,?,?)",
            [(internal_id, tag, value) for tag, value in identifiers[level].items()],
        )
        internal_id = parent


# -- deletion ------------------------------------------------------------------
def delete(sql: Sql, public_id: str, level: Level) -> DeleteResult | None:
    found = internal(sql, public_id, level, lock=True)
    if found is None:
        return None
    remaining, files = delete_rows(sql, found[0])
    return DeleteResult(remaining_ancestor=remaining, removed_files=files)


def delete_rows(sql: Sql, internal_id: int) -> tuple[tuple[str, Level] | None, list[str]]:
    """Delete a resource, its descendants and the ancestors it leaves empty, inside the caller's
    transaction: the closest ancestor that remains, and the files no row points at any more."""
    if sql.dialect.lock_row:
        # Other writers may be adding rows below: lock the subtree first, so that the files read
        # next are all those the deletion takes, and later additions wait, then start afresh.
        sql.rows(
            _SUBTREE + "SELECT r.internal_id FROM resources r JOIN tree ON r.internal_id = tree.id "
            "ORDER BY r.internal_id {LOCK_ROW} OF r",
            (internal_id,),
        )
    files = [
        r[0]
        for r in sql.rows(
            _SUBTREE + "SELECT a.uuid FROM attachments a JOIN tree ON a.internal_id = tree.id", (internal_id,)
        )
    ]
    parent_row = sql.row("SELECT parent FROM resources WHERE internal_id = ?", (internal_id,))
    assert parent_row is not None
    # The changes of a deleted resource leave the log with it, as its descendants' do.
    sql.run(
        "DELETE FROM changes WHERE public_id IN (" + _SUBTREE + "SELECT r.public_id FROM tree "
        "JOIN resources r ON r.internal_id = tree.id)",
        (internal_id,),
    )
    sql.run("DELETE FROM resources WHERE internal_id = ?", (internal_id,))
    parent = parent_row[0]
    remaining: tuple[str, Level] | None = None
    while parent is not None:
        # Locked before its children are counted: a child being added meanwhile is then seen.
        row = sql.row("SELECT public_id, level, parent FROM resources WHERE internal_id = ? {LOCK_ROW}", (parent,))
        assert row is not None
        if sql.row("SELECT 1 FROM resources WHERE parent = ? LIMIT 1", (parent,)) is not None:
            remaining = (row[0], Level(row[1]))
            break
        files += [r[0] for r in sql.rows("SELECT uuid FROM attachments WHERE internal_id = ?", (parent,))]
        sql.run("DELETE FROM resources WHERE internal_id = ?", (parent,))
        sql.run("DELETE FROM changes WHERE public_id = ?", (row[0],))
        parent = row[2]
    return remaining, files


# -- browsing --------------------------------------------------------------------
def _record(sql: Sql, internal_id: int) -> ResourceRecord:
    row = sql.row(
        "SELECT r.public_id, r.level, p.public_id, r.main_tags, r.patient_tags "
        "FROM resources r LEFT JOIN resources p ON p.internal_id = r.parent WHERE r.internal_id = ?",
        (internal_id,),
    )
    assert row is not None
    public_id, level, parent, tags, patient_tags = row
    children = [
        r[0] for r in sql.rows("SELECT public_id FROM resources WHERE parent = ? ORDER BY internal_id", (internal_id,))
    ]
    metadata = dict(sql.rows("SELECT name, value FROM metadata WHERE internal_id = ?", (internal_id,)))
    return ResourceRecord(
        public_id=public_id,
        level=Level(level),
        parent=parent,
        main_tags=json.loads(tags),
        patient_tags=json.loads(patient_tags),
        children=children,
        metadata=metadata,
    )


def resource(sql: Sql, public_id: str, level: Level | None) -> ResourceRecord | None:
    found = internal(sql, public_id, level)
    return _record(sql, found[0]) if found else None


def resources(sql: Sql, public_ids: list[str]) -> list[ResourceRecord]:
    records = []
    for public_id in public_ids:
        found = internal(sql, public_id)
        if found:
            records.append(_record(sql, found[0]))
    return records


def list_ids(sql: Sql, level: Level, since: int, limit: int | None) -> list[str]:
    rows = sql.rows(
        "SELECT public_id FROM resources WHERE level = ? ORDER BY internal_id LIMIT ? OFFSET ?",
        (int(level), sql.dialect.no_limit if limit is None else limit, since),
    )
    return [r[0] for r in rows]


def descendants(sql: Sql, public_id: str, level: Level, of: Level | None = None) -> list[str]:
    """The resources of ``level`` below ``public_id`` (itself at that level), none if it is not at
    level ``of``; in one statement (see SqlBackend._lookup_one)."""
    anchor = "SELECT internal_id, level FROM resources WHERE public_id = ?"
    params: list[object] = [public_id]
    if of is not None:
        anchor += " AND level = ?"
        params.append(int(of))
    rows = sql.rows(
        f"WITH RECURSIVE tree(id, level) AS ({anchor} UNION ALL "
        "SELECT r.internal_id, r.level FROM resources r JOIN tree ON r.parent = tree.id "
        "WHERE tree.level < ?) "
        "SELECT r.public_id FROM tree JOIN resources r ON r.internal_id = tree.id "
        "WHERE tree.level = ? ORDER BY r.internal_id",
        [*params, int(level), int(level)],
    )
    return [r[0] for r in rows]


def level_of(sql: Sql, public_id: str) -> Level | None:
    found = internal(sql, public_id)
    return found[1] if found else None


def all_tags_of_level(sql: Sql, level: Level) -> list[tuple[str, dict[str, str]]]:
    rows = sql.rows(
        # Below the patient level, patient tags are the study's copy (those of its first
        # instance), as Orthanc matches them: a patient renamed in a later study keeps
        # its first name in the patient record, and the new one in that study.
        "SELECT r.public_id, r.main_tags, s.main_tags, se.main_tags, COALESCE(s.patient_tags, r.patient_tags) "
        "FROM resources r "
        "LEFT JOIN resources se ON se.internal_id = CASE WHEN r.level = 3 THEN r.parent END "
        "LEFT JOIN resources s ON s.internal_id = CASE WHEN r.level = 3 THEN se.parent "
        "WHEN r.level = 2 THEN r.parent END "
        "WHERE r.level = ? ORDER BY r.internal_id",
        (int(level),),
    )
    out = []
    for public_id, own, study, series, patient in rows:
        merged: dict[str, str] = {}
        for blob in (patient, study, series, own):
            if blob:
                merged.update(json.loads(blob))
        out.append((public_id, merged))
    return out


def lookup_identifier(sql: Sql, value: str) -> list[tuple[str, Level]]:
    rows = sql.rows(
        # Each level answers for its own identifier only: a study's copy of PatientID does not count.
        "SELECT DISTINCT r.public_id, r.level, r.internal_id FROM identifiers i JOIN resources r "
        f"ON r.internal_id = i.internal_id WHERE i.value = ? AND {_IDENTIFIER_TAGS} ORDER BY r.level, r.internal_id",
        (value,),
    )
    return [(r[0], Level(r[1])) for r in rows]


# A level compared as ``+r.level`` keeps the planner off the index of levels where a more
# selective one (of public IDs, of identifier values) applies: without statistics, SQLite would
# otherwise walk every resource of the level.


def lookup_identifier_at(sql: Sql, level: Level, tag: str, value: str) -> list[str]:
    rows = sql.rows(
        "SELECT r.public_id FROM identifiers i JOIN resources r ON r.internal_id = i.internal_id "
        "WHERE i.value = ? AND i.tag = ? AND +r.level = ? ORDER BY r.internal_id",
        (value, tag, int(level)),
    )
    return [r[0] for r in rows]


def _summary_sql(dialect: Dialect, level: Level, count: int) -> str:
    """One row per resource of ``level`` among ``count`` public IDs: its first instance, the
    distinct Modality of the series below, the distinct SOP classes of the instances below, then
    the number of descendants per lower level."""
    aliases = ["t", *(f"d{depth}" for depth in range(1, Level.INSTANCE - level + 1))]
    joins = " ".join(f"JOIN resources {c} ON {c}.parent = {p}.internal_id" for p, c in itertools.pairwise(aliases))
    instance = aliases[-1]
    series = aliases[Level.SERIES - level] if level <= Level.SERIES else None
    modality = dialect.json_text(f"{series}.main_tags", "0008,0060") if series else "NULL"
    counts = "".join(f", COUNT(DISTINCT {alias}.internal_id)" for alias in aliases[1:])
    return (
        f"SELECT t.public_id, {dialect.first_by(f'{instance}.public_id', f'{instance}.internal_id')}, "
        f"{dialect.json_distinct_array(modality)}, "
        f"{dialect.json_distinct_array('m.value')}{counts} FROM resources t {joins} "
        f"LEFT JOIN metadata m ON m.internal_id = {instance}.internal_id AND m.name = 'SopClassUid' "
        f"WHERE +t.level = ? AND t.public_id IN ({','.join('?' * count)}) GROUP BY t.internal_id"
    )


def descendant_summaries(sql: Sql, public_ids: Sequence[str], level: Level) -> dict[str, DescendantSummary]:
    lower = [lv for lv in Level if lv > level]
    found: dict[str, DescendantSummary] = {}
    for start in range(0, len(public_ids), SUMMARY_CHUNK):
        chunk = list(public_ids[start : start + SUMMARY_CHUNK])
        for public_id, _, first, modalities, sop_classes, *counts in sql.rows(
            _summary_sql(sql.dialect, level, len(chunk)), (int(level), *chunk)
        ):
            found[public_id] = DescendantSummary(
                counts={lv: int(n) for lv, n in zip(lower, counts, strict=True)},
                modalities=sorted(v for v in json.loads(modalities) if isinstance(v, str)),
                sop_classes=sorted(v for v in json.loads(sop_classes) if isinstance(v, str)),
                first_instance=first,
            )
    return found


# -- attachments, metadata, protection -------------------------------------------
def attachments(sql: Sql, public_id: str) -> dict[int, Attachment]:
    """In one statement (see SqlBackend._lookup_one); none for an unknown resource."""
    rows = sql.rows(
        f"SELECT {_ATTACHMENT_COLUMNS} FROM resources r "
        "JOIN attachments a ON a.internal_id = r.internal_id WHERE r.public_id = ?",
        (public_id,),
    )
    return {r[0]: Attachment(*r) for r in rows}


def dicom_attachments(sql: Sql, public_ids: Sequence[str]) -> dict[str, Attachment]:
    """The DICOM file of each of these instances that has one, in one query per SUMMARY_CHUNK."""
    found: dict[str, Attachment] = {}
    for start in range(0, len(public_ids), SUMMARY_CHUNK):
        chunk = list(public_ids[start : start + SUMMARY_CHUNK])
        rows = sql.rows(
            f"SELECT r.public_id, {_ATTACHMENT_COLUMNS} "
            f"FROM resources r JOIN attachments a ON a.internal_id = r.internal_id "
            f"WHERE a.content_type = ? AND r.public_id IN ({sql.marks(len(chunk))})",
            [ATTACHMENT_DICOM, *chunk],
        )
        found.update((row[0], Attachment(*row[1:])) for row in rows)
    return found


def delete_attachment(sql: Sql, public_id: str, content_type: int) -> str | None:
    found = internal(sql, public_id)
    if found is None:
        return None
    row = sql.row(
        "DELETE FROM attachments WHERE internal_id = ? AND content_type = ? RETURNING uuid", (found[0], content_type)
    )
    return row[0] if row else None


def set_attachment(sql: Sql, public_id: str, attachment: Attachment) -> str | None:
    found = internal(sql, public_id, lock=True)
    if found is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
    a = attachment
    old = sql.row("SELECT uuid FROM attachments WHERE internal_id = ? AND content_type = ?", (found[0], a.content_type))
    sql.run(
        "INSERT INTO attachments VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(internal_id, content_type) DO UPDATE SET "
        "uuid = excluded.uuid, compressed_size = excluded.compressed_size, "
        "uncompressed_size = excluded.uncompressed_size, compression = excluded.compression, "
        "uncompressed_md5 = excluded.uncompressed_md5, compressed_md5 = excluded.compressed_md5",
        (found[0], a.content_type, a.uuid, a.compressed_size, a.uncompressed_size, a.compression,
         a.uncompressed_md5, a.compressed_md5),
    )  # fmt: skip
    return old[0] if old else None


def known_attachments(sql: Sql, uuids: Collection[str]) -> set[str]:
    wanted = list(uuids)
    return {r[0] for r in sql.rows(f"SELECT uuid FROM attachments WHERE uuid IN ({sql.marks(len(wanted))})", wanted)}


def set_metadata(sql: Sql, public_id: str, name: str, value: str) -> None:
    found = internal(sql, public_id)
    if found is not None:
        sql.run(_UPSERT_METADATA, (found[0], name, value))


def delete_metadata(sql: Sql, public_id: str, name: str) -> bool:
    found = internal(sql, public_id)
    if found is None:
        return False
    return sql.run("DELETE FROM metadata WHERE internal_id = ? AND name = ?", (found[0], name)) > 0


def is_protected(sql: Sql, public_id: str) -> bool:
    row = sql.row("SELECT protected FROM resources WHERE public_id = ?", (public_id,))
    return bool(row and row[0])


def set_protected(sql: Sql, public_id: str, protected: bool) -> None:
    sql.run("UPDATE resources SET protected = ? WHERE public_id = ?", (int(protected), public_id))


# -- changes -----------------------------------------------------------------------
def log_change(sql: Sql, change_type: str, public_id: str, level: Level, date: str) -> None:
    # A change names a resource that exists: one deleted meanwhile (a late "stable") logs nothing.
    text = (
        "INSERT INTO changes(change_type, public_id, level, date) "
        "SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT) "
        "WHERE EXISTS (SELECT 1 FROM resources WHERE public_id = ?)"
    )
    params: list[Any] = [change_type, public_id, int(level), date, public_id]
    if change_type.startswith(_STABLE):
        # Once per quiet period: processes sharing the index each track the instances they
        # received, and the second to find a resource stable finds the change already logged
        # after the resource's last update.
        text += (
            " AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.public_id = ? AND c.change_type = ? "
            "AND c.date > COALESCE((SELECT m.value FROM metadata m JOIN resources r ON r.internal_id = m.internal_id "
            "WHERE r.public_id = ? AND m.name = 'LastUpdate'), ''))"
        )
        params += [public_id, change_type, public_id]
    sql.run(text, params)


def changes(sql: Sql, since: int, limit: int) -> tuple[list[Change], bool]:
    rows = sql.rows(f"SELECT {_CHANGE_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit + 1))
    return [_change(r) for r in rows[:limit]], len(rows) <= limit


def last_change(sql: Sql) -> Change | None:
    row = sql.row(f"SELECT {_CHANGE_COLUMNS} FROM changes ORDER BY seq DESC LIMIT 1")
    return _change(row) if row else None


def clear_changes(sql: Sql) -> None:
    sql.run("DELETE FROM changes")


# -- statistics ----------------------------------------------------------------------
def statistics(sql: Sql) -> dict[str, int]:
    counts = {int(lv): int(n) for lv, n in sql.rows("SELECT level, COUNT(*) FROM resources GROUP BY level")}
    sizes = sql.row("SELECT COALESCE(SUM(compressed_size), 0), COALESCE(SUM(uncompressed_size), 0) FROM attachments")
    assert sizes is not None
    stats = {f"Count{lv.plural.capitalize()}": counts.get(int(lv), 0) for lv in Level}
    return {**stats, "DiskSize": int(sizes[0]), "UncompressedSize": int(sizes[1])}


def resource_statistics(sql: Sql, public_id: str, level: Level) -> dict[str, int]:
    found = internal(sql, public_id, level)
    if found is None:
        return {}
    rows = sql.rows(
        "WITH RECURSIVE tree(id, level) AS (SELECT CAST(? AS BIGINT), CAST(? AS INTEGER) UNION ALL "
        "SELECT r.internal_id, r.level FROM resources r JOIN tree ON r.parent = tree.id) "
        "SELECT tree.level, COUNT(*), COALESCE(SUM(a.compressed_size), 0), "
        "COALESCE(SUM(a.uncompressed_size), 0), "
        "COALESCE(SUM(CASE WHEN a.content_type = 1 THEN a.compressed_size END), 0), "
        "COALESCE(SUM(CASE WHEN a.content_type = 1 THEN a.uncompressed_size END), 0) "
        "FROM tree LEFT JOIN attachments a ON a.internal_id = tree.id GROUP BY tree.level",
        (found[0], int(level)),
    )
    stats = {"DiskSize": 0, "UncompressedSize": 0, "DicomDiskSize": 0, "DicomUncompressedSize": 0}
    for lv, count, disk, raw, dicom_disk, dicom_raw in rows:
        if lv > level:
            stats[f"Count{Level(lv).plural.capitalize()}"] = int(count)
        stats["DiskSize"] += int(disk)
        stats["UncompressedSize"] += int(raw)
        stats["DicomDiskSize"] += int(dicom_disk)
        stats["DicomUncompressedSize"] += int(dicom_raw)
    for lv in Level:
        if lv > level:
            stats.setdefault(f"Count{lv.plural.capitalize()}", 0)
    return stats


# -- global properties and saved jobs -----------------------------------------------
def get_property(sql: Sql, name: str) -> str | None:
    row = sql.row("SELECT value FROM global_properties WHERE name = ?", (name,))
    return row[0] if row else None


def set_property(sql: Sql, name: str, value: str) -> None:
    sql.run(
        "INSERT INTO global_properties(name, value) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


def saved_jobs(sql: Sql) -> dict[str, str]:
    return dict(sql.rows("SELECT id, data FROM jobs"))


def saved_job_state(data: str) -> tuple[str, int]:
    """The row's state and priority for a job a single node saved (SaveJobs), should members
    ever share its index: an ended job stays ended and a paused one paused; any other is
    Pending, as a restarted node would queue it again. An unreadable one is never claimed."""
    try:
        form = json.loads(data)
    except ValueError:
        return _UNREADABLE_JOB
    if not isinstance(form, dict):
        return _UNREADABLE_JOB
    state = form.get("State")
    priority = form.get("Priority", 0)
    return (state if state in _KEPT_SAVED_STATES else "Pending"), (priority if isinstance(priority, int) else 0)


def adopt_saved_jobs(sql: Sql) -> None:
    """Give the rows of a jobs table made before the cluster's columns the state and priority
    their saved forms say (the new columns' defaults would make every one Pending)."""
    rows = [(*saved_job_state(data), job_id) for job_id, data in sql.rows("SELECT id, data FROM jobs")]
    sql.run_many("UPDATE jobs SET state = ?, priority = ? WHERE id = ?", rows)


def save_jobs(sql: Sql, changed: dict[str, str], removed: Collection[str], clear: bool) -> None:
    if clear:
        sql.run("DELETE FROM jobs")
    sql.run_many("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in removed])
    sql.run_many(
        "INSERT INTO jobs(id, data, state, priority) VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE "
        "SET data = excluded.data, state = excluded.state, priority = excluded.priority",
        [(job_id, data, *saved_job_state(data)) for job_id, data in changed.items()],
    )
