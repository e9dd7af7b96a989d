"""SQLite backend of the index, in WAL mode, driven by one dedicated thread."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sqlite3
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

import outcome

from ...dicom.ids import Level
from ...errors import ErrorCode, OrthancError, storage_full
from ..batch import Batcher
from ..files import flush_folder
from ..private import create_empty_file, make_folders
from ..thread import DedicatedThread
from .base import (
    Attachment,
    Change,
    ClaimedJob,
    DeleteResult,
    DescendantSummary,
    Index,
    JobLease,
    JobRow,
    NewInstance,
    ResourceRecord,
    StoreResult,
)
from .job_leases import JOB_COLUMNS, JOB_INDEXES, MEMBERS_TABLE, SQLITE_STATEMENTS

log = logging.getLogger(__name__)
T = TypeVar("T")
# A store waiting in the batch: the instance, whether it may replace one stored, and what
# blocks until its file is durable (see Index.store).
_StoreItem = tuple[NewInstance, bool, Callable[[], object] | None]
_PRIMARY_CODE = 0xFF  # the low byte of an extended SQLite result code is its primary code
BUSY_TIMEOUT_SECONDS = 10.0  # longest wait for the write lock another process holds
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes of write-ahead log kept after a checkpoint

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    internal_id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    level INTEGER NOT NULL,
    parent INTEGER REFERENCES resources(internal_id) ON DELETE CASCADE,
    main_tags TEXT NOT NULL,
    patient_tags TEXT NOT NULL DEFAULT '{}',
    protected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(parent);
CREATE INDEX IF NOT EXISTS resources_level ON resources(level, internal_id);
CREATE TABLE IF NOT EXISTS metadata (
    internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (internal_id, name)
);
CREATE TABLE IF NOT EXISTS attachments (
    internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    content_type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    compressed_size INTEGER NOT NULL,
    uncompressed_size INTEGER NOT NULL,
    compression INTEGER NOT NULL,
    uncompressed_md5 TEXT NOT NULL,
    compressed_md5 TEXT NOT NULL,
    PRIMARY KEY (internal_id, content_type)
);
CREATE INDEX IF NOT EXISTS attachments_uuid ON attachments(uuid);
CREATE TABLE IF NOT EXISTS identifiers (
    internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers(value, tag);
CREATE INDEX IF NOT EXISTS identifiers_resource ON identifiers(internal_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_type TEXT NOT NULL,
    public_id TEXT NOT NULL,
    level INTEGER NOT NULL,
    date TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_resource ON changes(public_id);
CREATE TABLE IF NOT EXISTS global_properties (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"""

_STATUS_NEW = {Level.PATIENT: "NewPatient", Level.STUDY: "NewStudy", Level.SERIES: "NewSeries"}
_SUMMARY_CHUNK = 500  # resources per summary query: well below SQLite's limit on parameters


def _summary_sql(level: Level, count: int) -> str:
    """One row per resource of ``level`` among ``count`` public IDs: its first instance (a bare
    column, taken by SQLite from the row of MIN), the distinct Modality of the series below, the
    distinct SOP classes of the instances below, then the number of descendants per lower level."""
    aliases = ["t", *(f"d{depth}" for depth in range(1, Level.INSTANCE - level + 1))]
    joins = " ".join(f"JOIN resources {c} ON {c}.parent = {p}.internal_id" for p, c in itertools.pairwise(aliases))
    instance = aliases[-1]
    series = aliases[Level.SERIES - level] if level <= Level.SERIES else None
    modality = f"json_extract({series}.main_tags, '$.\"0008,0060\"')" if series else "NULL"
    counts = "".join(f", COUNT(DISTINCT {alias}.internal_id)" for alias in aliases[1:])
    return (
        f"SELECT t.public_id, MIN({instance}.internal_id), {instance}.public_id, "
        f"json_group_array(DISTINCT {modality}), "
        f"json_group_array(DISTINCT m.value){counts} FROM resources t {joins} "
        f"LEFT JOIN metadata m ON m.internal_id = {instance}.internal_id AND m.name = 'SopClassUid' "
        f"WHERE t.level = ? AND t.public_id IN ({','.join('?' * count)}) GROUP BY t.internal_id"
    )


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


def _orthanc_error(error: sqlite3.Error) -> OrthancError:
    """What the client learns of an SQLite failure; SQLite's own words go to the log."""
    if (getattr(error, "sqlite_errorcode", 0) & _PRIMARY_CODE) == sqlite3.SQLITE_FULL:
        log.error("index: disk full: %s", error)
        return storage_full()
    log.error("index: %s", error, exc_info=error)
    return OrthancError(ErrorCode.DATABASE)


def _translated(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except sqlite3.Error as error:
        raise _orthanc_error(error) from error


class SqliteIndex(Index):
    """``durable`` (Orthanc's SyncStorageArea) makes every commit flush the write-ahead log
    before it returns (``synchronous=FULL``); otherwise a power cut may lose the last commits,
    though never corrupt the database.
    """

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        make_folders(directory)
        self._thread = DedicatedThread("sqlite-index")
        self._db: sqlite3.Connection = self._thread.run_blocking(self._open, directory / "index.sqlite", durable)
        self._store_batcher = Batcher(self._thread, self._store_batch)

    @staticmethod
    def _open(path: Path, durable: bool) -> sqlite3.Connection:
        create_empty_file(path)  # private; SQLite gives its -wal and -shm files the same mode
        # Other processes (members) may hold the write lock: wait for it this long before failing.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_SECONDS)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        db.executescript(SCHEMA)
        _migrate_jobs(db)
        # A resource is stable once per quiet period: when several processes each track the
        # instances they received, the second to find a resource stable logs nothing, a
        # Stable* change being already logged after the resource's last update.
        db.execute(
            "CREATE TEMP TRIGGER IF NOT EXISTS stable_once BEFORE INSERT ON main.changes "
            "WHEN NEW.change_type LIKE 'Stable%' AND EXISTS (SELECT 1 FROM main.changes c "
            "WHERE c.public_id = NEW.public_id AND c.change_type = NEW.change_type AND c.date > COALESCE(("
            "SELECT m.value FROM main.metadata m JOIN main.resources r ON r.internal_id = m.internal_id "
            "WHERE r.public_id = NEW.public_id AND m.name = 'LastUpdate'), '')) "
            "BEGIN SELECT RAISE(IGNORE); END"
        )
        if durable:  # the names of the database and of its write-ahead log, just created
            flush_folder(path.parent)
        return db

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the index thread, SQLite's errors turned into Orthanc's."""
        return await self._thread.run(_translated, fn, *args)

    async def close(self) -> None:
        await self._thread.run(self._db.close)
        self._thread.stop()

    # -- helpers (run on the index thread) --------------------------------
    def _internal(self, public_id: str, level: Level | None = None) -> tuple[int, Level] | None:
        row = self._db.execute("SELECT internal_id, level FROM resources WHERE public_id = ?", (public_id,)).fetchone()
        if row is None or (level is not None and row[1] != level):
            return None
        return row[0], Level(row[1])

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    # -- ingest ------------------------------------------------------------
    async def store(
        self, instance: NewInstance, *, overwrite: bool, written: Callable[[], object] | None = None
    ) -> StoreResult:
        return await self._store_batcher.submit((instance, overwrite, written))

    def _store_batch(self, items: list[_StoreItem]) -> list[outcome.Outcome[StoreResult]]:
        """Group commit: one transaction for every store that queued up meanwhile, committed
        once the files of all of them are durable."""
        if len(items) > 1:
            # A failure rolls the whole batch back; it is then redone one by one, so only the culprit fails.
            with contextlib.suppress(Exception), self._tx():
                results: list[outcome.Outcome[StoreResult]] = [
                    outcome.Value(self._insert(new, overwrite)) for new, overwrite, _ in items
                ]
                for _, _, written in items:
                    if written is not None:
                        written()
                return results
        return [outcome.capture(_translated, self._store, new, overwrite, written) for new, overwrite, written in items]

    def _store(self, new: NewInstance, overwrite: bool, written: Callable[[], object] | None) -> StoreResult:
        with self._tx():
            result = self._insert(new, overwrite)
            if written is not None:
                written()  # its failure rolls the rows back and reaches the caller
            return result

    def _insert(self, new: NewInstance, overwrite: bool) -> StoreResult:
        """The rows of one new instance, inside the caller's transaction."""
        db = self._db
        result = StoreResult(already_stored=False)
        # One query for the four levels: the IDs are hashes, distinct across levels.
        known = dict(db.execute("SELECT public_id, internal_id FROM resources WHERE public_id IN (?,?,?,?)", new.ids))
        existing = known.pop(new.ids[3], None)
        if existing is not None:
            if not overwrite:
                return StoreResult(already_stored=True)
            # Replaced as a deletion then a store: ancestors left empty go too, and come back as new.
            _, result.removed_files = self._delete_rows(existing)
            known = dict(
                db.execute("SELECT public_id, internal_id FROM resources WHERE public_id IN (?,?,?)", new.ids[:3])
            )
        parent: int | None = None
        internal_ids: dict[Level, int] = {}
        for level in Level:
            internal = known.get(new.ids[level])
            if internal is None:
                patient_tags = new.tags[Level.PATIENT] if level == Level.STUDY else {}
                cursor = db.execute(
                    "INSERT INTO resources(public_id, level, parent, main_tags, patient_tags) VALUES (?,?,?,?,?)",
                    (new.ids[level], int(level), parent, json.dumps(new.tags[level]), json.dumps(patient_tags)),
                )
                internal = int(cursor.lastrowid or 0)
                db.executemany(
                    "INSERT INTO identifiers(internal_id, tag, value) VALUES (?,?,?)",
                    [(internal, tag, value) for tag, value in new.identifiers[level].items()],
                )
                if level != Level.INSTANCE:
                    result.created.append(level)
            internal_ids[level] = internal
            parent = internal
        instance = internal_ids[Level.INSTANCE]
        a = new.attachment
        db.execute(
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
        db.executemany("INSERT OR REPLACE INTO metadata(internal_id, name, value) VALUES (?,?,?)", rows)
        changes = [("NewInstance", new.ids[3], Level.INSTANCE)]
        changes += [(_STATUS_NEW[lv], new.ids[lv], lv) for lv in sorted(result.created, reverse=True)]
        # Complete as this instance counts the series' instances, whatever the series' own count says.
        if new.expected_instances and series_status(new.expected_instances, self._indexes(series)) == "Complete":
            result.series_completed = True
            changes.append(("CompletedSeries", new.ids[2], Level.SERIES))
        db.executemany(
            "INSERT INTO changes(change_type, public_id, level, date) VALUES (?,?,?,?)",
            [(kind, public, int(lv), new.last_update) for kind, public, lv in changes],
        )
        return result

    def _indexes(self, series: int) -> list[str | None]:
        """The IndexInSeries of every instance of a series (None where it has none)."""
        return [
            r[0]
            for r in self._db.execute(
                "SELECT m.value FROM resources r LEFT JOIN metadata m "
                "ON m.internal_id = r.internal_id AND m.name = 'IndexInSeries' WHERE r.parent = ?",
                (series,),
            )
        ]

    def _series_status(self, series: int) -> str:
        expected = self._db.execute(
            "SELECT value FROM metadata WHERE internal_id = ? AND name = 'ExpectedNumberOfInstances'", (series,)
        ).fetchone()
        try:
            count = int(expected[0]) if expected else None
        except ValueError:
            count = None
        return series_status(count, self._indexes(series))

    async def series_status(self, public_id: str) -> str:
        def run() -> str:
            found = self._internal(public_id, Level.SERIES)
            return self._series_status(found[0]) if found else "Unknown"

        return await self._run(run)

    async def set_main_tags(
        self, instance: str, tags: dict[Level, dict[str, str]], identifiers: dict[Level, dict[str, str]]
    ) -> None:
        def run() -> None:
            db = self._db
            with self._tx():
                found = self._internal(instance, Level.INSTANCE)
                internal: int | None = found[0] if found else None
                while internal is not None:
                    level_number, parent = db.execute(
                        "SELECT level, parent FROM resources WHERE internal_id = ?", (internal,)
                    ).fetchone()
                    level = Level(level_number)
                    patient_tags = tags[Level.PATIENT] if level == Level.STUDY else {}
                    db.execute(
                        "UPDATE resources SET main_tags = ?, patient_tags = ? WHERE internal_id = ?",
                        (json.dumps(tags[level]), json.dumps(patient_tags), internal),
                    )
                    db.execute("DELETE FROM identifiers WHERE internal_id = ?", (internal,))
                    db.executemany(
                        "INSERT INTO identifiers(internal_id, tag, value) VALUES (?,?,?)",
                        [(internal, tag, value) for tag, value in identifiers[level].items()],
                    )
                    internal = parent

        await self._run(run)

    # -- deletion ----------------------------------------------------------
    async def delete(self, public_id: str, level: Level) -> DeleteResult | None:
        return await self._run(self._delete, public_id, level)

    def _delete(self, public_id: str, level: Level) -> DeleteResult | None:
        with self._tx():
            found = self._internal(public_id, level)
            if found is None:
                return None
            remaining, files = self._delete_rows(found[0])
        return DeleteResult(remaining_ancestor=remaining, removed_files=files)

    def _delete_rows(self, internal: int) -> tuple[tuple[str, Level] | None, list[str]]:
        """Delete a resource, its descendants and the ancestors it leaves empty, inside the caller's
        transaction: the closest ancestor that remains, and the files no row points at any more."""
        db = self._db
        files = [
            r[0]
            for r in db.execute(
                "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL "
                "SELECT r.internal_id FROM resources r JOIN tree ON r.parent = tree.id) "
                "SELECT a.uuid FROM attachments a JOIN tree ON a.internal_id = tree.id",
                (internal,),
            )
        ]
        parent_row = db.execute("SELECT parent FROM resources WHERE internal_id = ?", (internal,)).fetchone()
        # The changes of a deleted resource leave the log with it, as its descendants' do.
        db.execute(
            "DELETE FROM changes WHERE public_id IN (WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL "
            "SELECT r.internal_id FROM resources r JOIN tree ON r.parent = tree.id) "
            "SELECT r.public_id FROM tree JOIN resources r ON r.internal_id = tree.id)",
            (internal,),
        )
        db.execute("DELETE FROM resources WHERE internal_id = ?", (internal,))
        parent = parent_row[0]
        remaining: tuple[str, Level] | None = None
        while parent is not None:
            row = db.execute(
                "SELECT public_id, level, parent, (SELECT COUNT(*) FROM resources c WHERE c.parent = r.internal_id) "
                "FROM resources r WHERE internal_id = ?",
                (parent,),
            ).fetchone()
            if row[3] > 0:
                remaining = (row[0], Level(row[1]))
                break
            files += [r[0] for r in db.execute("SELECT uuid FROM attachments WHERE internal_id = ?", (parent,))]
            db.execute("DELETE FROM resources WHERE internal_id = ?", (parent,))
            db.execute("DELETE FROM changes WHERE public_id = ?", (row[0],))
            parent = row[2]
        return remaining, files

    # -- browsing ----------------------------------------------------------
    def _record(self, internal: int) -> ResourceRecord:
        db = self._db
        public_id, level, parent, tags, patient_tags = db.execute(
            "SELECT r.public_id, r.level, p.public_id, r.main_tags, r.patient_tags "
            "FROM resources r LEFT JOIN resources p ON p.internal_id = r.parent WHERE r.internal_id = ?",
            (internal,),
        ).fetchone()
        children = [
            r[0]
            for r in db.execute("SELECT public_id FROM resources WHERE parent = ? ORDER BY internal_id", (internal,))
        ]
        metadata = dict(db.execute("SELECT name, value FROM metadata WHERE internal_id = ?", (internal,)).fetchall())
        return ResourceRecord(
            public_id=public_id,
            level=Level(level),
            parent=parent,
            main_tags=json.loads(tags),
            patient_tags=json.loads(patient_tags),
            children=children,
            metadata=metadata,
        )

    async def resource(self, public_id: str, level: Level | None = None) -> ResourceRecord | None:
        def run() -> ResourceRecord | None:
            found = self._internal(public_id, level)
            return self._record(found[0]) if found else None

        return await self._run(run)

    async def resources(self, public_ids: list[str]) -> list[ResourceRecord]:
        def run() -> list[ResourceRecord]:
            records = []
            for public_id in public_ids:
                found = self._internal(public_id)
                if found:
                    records.append(self._record(found[0]))
            return records

        return await self._run(run)

    async def list_ids(self, level: Level, since: int = 0, limit: int | None = None) -> list[str]:
        def run() -> list[str]:
            rows = self._db.execute(
                "SELECT public_id FROM resources WHERE level = ? ORDER BY internal_id LIMIT ? OFFSET ?",
                (int(level), -1 if limit is None else limit, since),
            )
            return [r[0] for r in rows]

        return await self._run(run)

    async def descendants(self, public_id: str, level: Level) -> list[str]:
        def run() -> list[str]:
            found = self._internal(public_id)
            if found is None:
                return []
            rows = self._db.execute(
                "WITH RECURSIVE tree(id, level) AS (SELECT ?, ? UNION ALL "
                "SELECT r.internal_id, r.level FROM resources r JOIN tree ON r.parent = tree.id "
                "WHERE tree.level < ?) "
                "SELECT r.public_id FROM tree JOIN resources r ON r.internal_id = tree.id "
                "WHERE tree.level = ? ORDER BY r.internal_id",
                (found[0], int(found[1]), int(level), int(level)),
            )
            return [r[0] for r in rows]

        return await self._run(run)

    async def level_of(self, public_id: str) -> Level | None:
        def run() -> Level | None:
            found = self._internal(public_id)
            return found[1] if found else None

        return await self._run(run)

    async def all_tags_of_level(self, level: Level) -> list[tuple[str, dict[str, str]]]:
        def run() -> list[tuple[str, dict[str, str]]]:
            rows = self._db.execute(
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

        return await self._run(run)

    async def lookup_identifier(self, value: str) -> list[tuple[str, Level]]:
        def run() -> list[tuple[str, Level]]:
            rows = self._db.execute(
                # Each level answers for its own identifier only: a study's copy of PatientID does not count.
                "SELECT DISTINCT r.public_id, r.level FROM identifiers i JOIN resources r "
                "ON r.internal_id = i.internal_id WHERE i.value = ? AND ((r.level = 0 AND i.tag = '0010,0020') "
                "OR (r.level = 1 AND i.tag = '0020,000d') OR (r.level = 2 AND i.tag = '0020,000e') "
                "OR (r.level = 3 AND i.tag = '0008,0018')) ORDER BY r.level, r.internal_id",
                (value,),
            )
            return [(r[0], Level(r[1])) for r in rows]

        return await self._run(run)

    async def lookup_identifier_at(self, level: Level, tag: str, value: str) -> list[str]:
        def run() -> list[str]:
            rows = self._db.execute(
                "SELECT r.public_id FROM identifiers i JOIN resources r ON r.internal_id = i.internal_id "
                "WHERE i.value = ? AND i.tag = ? AND r.level = ? ORDER BY r.internal_id",
                (value, tag, int(level)),
            )
            return [r[0] for r in rows]

        return await self._run(run)

    async def descendant_summaries(self, public_ids: Sequence[str], level: Level) -> dict[str, DescendantSummary]:
        lower = [lv for lv in Level if lv > level]

        def run() -> dict[str, DescendantSummary]:
            found: dict[str, DescendantSummary] = {}
            for start in range(0, len(public_ids), _SUMMARY_CHUNK):
                chunk = list(public_ids[start : start + _SUMMARY_CHUNK])
                rows = self._db.execute(_summary_sql(level, len(chunk)), (int(level), *chunk))
                for public_id, _, first, modalities, sop_classes, *counts in rows:
                    found[public_id] = DescendantSummary(
                        counts=dict(zip(lower, counts, strict=True)),
                        modalities=sorted(v for v in json.loads(modalities) if isinstance(v, str)),
                        sop_classes=sorted(v for v in json.loads(sop_classes) if isinstance(v, str)),
                        first_instance=first,
                    )
            return found

        return await self._run(run)

    # -- attachments, metadata, protection ---------------------------------
    async def attachments(self, public_id: str) -> dict[int, Attachment]:
        def run() -> dict[int, Attachment]:
            found = self._internal(public_id)
            if found is None:
                return {}
            rows = self._db.execute(
                "SELECT content_type, uuid, uncompressed_size, compressed_size, uncompressed_md5, compressed_md5, "
                "compression FROM attachments WHERE internal_id = ?",
                (found[0],),
            )
            return {r[0]: Attachment(*r) for r in rows}

        return await self._run(run)

    async def delete_attachment(self, public_id: str, content_type: int) -> str | None:
        def run() -> str | None:
            with self._tx():
                found = self._internal(public_id)
                if found is None:
                    return None
                row = self._db.execute(
                    "DELETE FROM attachments WHERE internal_id = ? AND content_type = ? RETURNING uuid",
                    (found[0], content_type),
                ).fetchone()
                return row[0] if row else None

        return await self._run(run)

    async def set_attachment(self, public_id: str, attachment: Attachment) -> str | None:
        def run() -> str | None:
            with self._tx():
                found = self._internal(public_id)
                if found is None:
                    raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
                a = attachment
                old = self._db.execute(
                    "SELECT uuid FROM attachments WHERE internal_id = ? AND content_type = ?",
                    (found[0], a.content_type),
                ).fetchone()
                self._db.execute(
                    "INSERT OR REPLACE INTO attachments VALUES (?,?,?,?,?,?,?,?)",
                    (found[0], a.content_type, a.uuid, a.compressed_size, a.uncompressed_size, a.compression,
                     a.uncompressed_md5, a.compressed_md5),
                )  # fmt: skip
                return old[0] if old else None

        return await self._run(run)

    async def known_attachments(self, uuids: Collection[str]) -> set[str]:
        wanted = list(uuids)

        def run() -> set[str]:
            marks = ",".join("?" * len(wanted))
            return {r[0] for r in self._db.execute(f"SELECT uuid FROM attachments WHERE uuid IN ({marks})", wanted)}

        return await self._run(run) if wanted else set()

    async def set_metadata(self, public_id: str, name: str, value: str) -> None:
        def run() -> None:
            found = self._internal(public_id)
            if found is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO metadata(internal_id, name, value) VALUES (?,?,?)", (found[0], name, value)
                )

        await self._run(run)

    async def delete_metadata(self, public_id: str, name: str) -> bool:
        def run() -> bool:
            found = self._internal(public_id)
            if found is None:
                return False
            cursor = self._db.execute("DELETE FROM metadata WHERE internal_id = ? AND name = ?", (found[0], name))
            return cursor.rowcount > 0

        return await self._run(run)

    async def is_protected(self, public_id: str) -> bool:
        def run() -> bool:
            row = self._db.execute("SELECT protected FROM resources WHERE public_id = ?", (public_id,)).fetchone()
            return bool(row and row[0])

        return await self._run(run)

    async def set_protected(self, public_id: str, protected: bool) -> None:
        def run() -> None:
            self._db.execute("UPDATE resources SET protected = ? WHERE public_id = ?", (int(protected), public_id))

        await self._run(run)

    # -- changes -----------------------------------------------------------
    async def log_change(self, change_type: str, public_id: str, level: Level, date: str) -> None:
        def run() -> None:
            # A change names a resource that exists: one deleted meanwhile (a late "stable") logs nothing.
            self._db.execute(
                "INSERT INTO changes(change_type, public_id, level, date) SELECT ?,?,?,? "
                "WHERE EXISTS (SELECT 1 FROM resources WHERE public_id = ?)",
                (change_type, public_id, int(level), date, public_id),
            )

        await self._run(run)

    async def changes(self, since: int, limit: int) -> tuple[list[Change], bool]:
        def run() -> tuple[list[Change], bool]:
            rows = self._db.execute(
                "SELECT seq, change_type, public_id, level, date FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (since, limit + 1),
            ).fetchall()
            done = len(rows) <= limit
            return [Change(r[0], r[1], r[2], Level(r[3]), r[4]) for r in rows[:limit]], done

        return await self._run(run)

    async def last_change(self) -> Change | None:
        def run() -> Change | None:
            r = self._db.execute(
                "SELECT seq, change_type, public_id, level, date FROM changes ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            return Change(r[0], r[1], r[2], Level(r[3]), r[4]) if r else None

        return await self._run(run)

    async def last_seq(self) -> int:
        def run() -> int:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
            return int(row[0]) if row else 0

        return await self._run(run)

    async def clear_changes(self) -> None:
        await self._run(self._db.execute, "DELETE FROM changes")

    # -- statistics --------------------------------------------------------
    async def statistics(self) -> dict[str, int]:
        def run() -> dict[str, int]:
            counts = dict(self._db.execute("SELECT level, COUNT(*) FROM resources GROUP BY level").fetchall())
            disk, raw = self._db.execute(
                "SELECT COALESCE(SUM(compressed_size), 0), COALESCE(SUM(uncompressed_size), 0) FROM attachments"
            ).fetchone()
            stats = {f"Count{lv.plural.capitalize()}": counts.get(int(lv), 0) for lv in Level}
            return {**stats, "DiskSize": disk, "UncompressedSize": raw}

        return await self._run(run)

    async def resource_statistics(self, public_id: str, level: Level) -> dict[str, int]:
        def run() -> dict[str, int]:
            found = self._internal(public_id, level)
            if found is None:
                return {}
            rows = self._db.execute(
                "WITH RECURSIVE tree(id, level) AS (SELECT ?, ? UNION ALL "
                "SELECT r.internal_id, r.level FROM resources r JOIN tree ON r.parent = tree.id) "
                "SELECT tree.level, COUNT(*), COALESCE(SUM(a.compressed_size), 0), "
                "COALESCE(SUM(a.uncompressed_size), 0), "
                "COALESCE(SUM(CASE WHEN a.content_type = 1 THEN a.compressed_size END), 0), "
                "COALESCE(SUM(CASE WHEN a.content_type = 1 THEN a.uncompressed_size END), 0) "
                "FROM tree LEFT JOIN attachments a ON a.internal_id = tree.id GROUP BY tree.level",
                (found[0], int(level)),
            ).fetchall()
            stats = {"DiskSize": 0, "UncompressedSize": 0, "DicomDiskSize": 0, "DicomUncompressedSize": 0}
            for lv, count, disk, raw, dicom_disk, dicom_raw in rows:
                if lv > level:
                    stats[f"Count{Level(lv).plural.capitalize()}"] = count
                stats["DiskSize"] += disk
                stats["UncompressedSize"] += raw
                stats["DicomDiskSize"] += dicom_disk
                stats["DicomUncompressedSize"] += dicom_raw
            for lv in Level:
                if lv > level:
                    stats.setdefault(f"Count{lv.plural.capitalize()}", 0)
            return stats

        return await self._run(run)

    # -- global properties -------------------------------------------------
    async def get_property(self, name: str) -> str | None:
        def run() -> str | None:
            row = self._db.execute("SELECT value FROM global_properties WHERE name = ?", (name,)).fetchone()
            return row[0] if row else None

        return await self._run(run)

    async def set_property(self, name: str, value: str) -> None:
        await self._run(
            self._db.execute, "INSERT OR REPLACE INTO global_properties(name, value) VALUES (?,?)", (name, value)
        )

    # -- saved jobs ----------------------------------------------------------
    async def saved_jobs(self) -> dict[str, str]:
        def run() -> dict[str, str]:
            return dict(self._db.execute("SELECT id, data FROM jobs").fetchall())

        return await self._run(run)

    async def save_jobs(self, changed: dict[str, str], removed: Collection[str], *, clear: bool = False) -> None:
        def run() -> None:
            with self._tx():
                if clear:
                    self._db.execute("DELETE FROM jobs")
                self._db.executemany("DELETE FROM jobs WHERE id = ?", [(job_id,) for job_id in removed])
                self._db.executemany("INSERT OR REPLACE INTO jobs(id, data) VALUES (?,?)", list(changed.items()))

        await self._run(run)

    # -- cluster jobs (statements shared with every backend: job_leases) ---------
    async def insert_job(
        self, job_id: str, data: str, *, state: str, priority: int, owner: str | None, ttl_ms: int
    ) -> None:
        params = {"id": job_id, "data": data, "state": state, "priority": priority, "owner": owner, "ttl": ttl_ms}
        await self._run(self._write_statement, _JOBS.insert, params)

    async def claim_job(self, member: str, ttl_ms: int) -> ClaimedJob | None:
        row = await self._run(self._write_statement, _JOBS.claim, {"me": member, "ttl": ttl_ms}, True)
        return ClaimedJob(*row[0]) if row else None

    async def renew_job_leases(self, member: str, ttl_ms: int) -> list[JobLease]:
        def run() -> list[JobLease]:
            with self._tx():
                self._db.execute(_JOBS.heartbeat, {"me": member})
                return [JobLease(*row) for row in self._db.execute(_JOBS.renew, {"me": member, "ttl": ttl_ms})]

        return await self._run(run)

    async def reap_job_leases(self, member_max_age_ms: int) -> int:
        def run() -> int:
            with self._tx():
                self._db.execute(_JOBS.forget_members, {"max_age": member_max_age_ms})
                return self._db.execute(_JOBS.reap).rowcount

        return await self._run(run)

    async def release_member_jobs(self, member: str) -> None:
        await self._run(self._write_statement, _JOBS.release_member, {"me": member})

    async def write_owned_job(
        self,
        job_id: str,
        member: str,
        generation: int,
        data: str,
        *,
        state: str,
        owner_after: str | None,
        ttl_ms: int,
        requeue: bool = False,
    ) -> bool:
        params = {
            "id": job_id, "me": member, "generation": generation, "data": data, "state": state,
            "owner_after": owner_after, "ttl": ttl_ms, "keep_command": int(state == "Running"),
            "requeue": int(requeue),
        }  # fmt: skip
        return bool(await self._run(self._write_count, _JOBS.fenced_write, params))

    async def replace_job(self, row: JobRow, data: str, *, state: str, priority: int, requeue: bool = False) -> bool:
        params = {
            "id": row.id, "data": data, "state": state, "priority": priority, "requeue": int(requeue),
            "expected_state": row.state, "generation": row.generation, "expected_owner": row.owner,
        }  # fmt: skip
        return bool(await self._run(self._write_count, _JOBS.compare_and_set, params))

    async def set_job_command(self, job_id: str, command: str) -> str | None:
        rows = await self._run(self._write_statement, _JOBS.set_command, {"id": job_id, "command": command}, True)
        return rows[0][0] if rows else None

    async def job_commands(self, member: str) -> list[tuple[str, str]]:
        return await self._run(self._read_statement, _JOBS.commands_of, {"me": member})

    async def job_row(self, job_id: str) -> JobRow | None:
        rows = await self._run(self._read_statement, _JOBS.row, {"id": job_id})
        return JobRow(*rows[0]) if rows else None

    async def job_rows(self, state: str | None = None) -> list[JobRow]:
        if state is None:
            rows = await self._run(self._read_statement, _JOBS.rows, {})
        else:
            rows = await self._run(self._read_statement, _JOBS.rows_in_state, {"state": state})
        return [JobRow(*row) for row in rows]

    async def job_counts(self) -> dict[str, int]:
        return dict(await self._run(self._read_statement, _JOBS.counts, {}))

    async def trim_job_history(self, keep: int) -> list[str]:
        rows = await self._run(self._write_statement, _JOBS.trim_history, {"keep": keep}, True)
        return [data for _, data in rows]

    async def delete_ended_job(self, job_id: str) -> str | None:
        rows = await self._run(self._write_statement, _JOBS.delete_ended, {"id": job_id}, True)
        return rows[0][0] if rows else None

    async def register_member(self, member: str, pid: int) -> None:
        await self._run(self._write_statement, _JOBS.register_member, {"me": member, "pid": pid})

    async def unregister_member(self, member: str) -> None:
        await self._run(self._write_statement, _JOBS.unregister_member, {"me": member})

    async def live_members(self, max_age_ms: int) -> list[str]:
        rows = await self._run(self._read_statement, _JOBS.live_members, {"max_age": max_age_ms})
        return [member for (member,) in rows]

    def _write_statement(self, sql: str, params: dict[str, Any], fetch: bool = False) -> list[Any]:
        """One statement in its own BEGIN IMMEDIATE transaction (a claim reads, then writes); its rows."""
        with self._tx():
            cursor = self._db.execute(sql, params)
            return cursor.fetchall() if fetch else []

    def _write_count(self, sql: str, params: dict[str, Any]) -> int:
        with self._tx():
            return self._db.execute(sql, params).rowcount

    def _read_statement(self, sql: str, params: dict[str, Any]) -> list[Any]:
        return self._db.execute(sql, params).fetchall()


_JOBS = SQLITE_STATEMENTS


def _migrate_jobs(db: sqlite3.Connection) -> None:
    """Give a jobs table made before the cluster columns its missing ones, their indexes, and the members table."""
    present = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name, definition in JOB_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")
    for statement in (*JOB_INDEXES, MEMBERS_TABLE):
        db.execute(statement)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception, a failed COMMIT included.

    A COMMIT that fails (a full disk) may leave the transaction open; rolling it back is
    what lets the next one begin once the disk has room again.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:  # SQLite may have rolled back already
            self._db.execute("ROLLBACK")
