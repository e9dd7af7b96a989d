"""The index's tables, written once: each backend renders the few column types that differ.

Tables are created only where missing, so an index made by an earlier version keeps the layout
it was made with (metadata, attachments and identifiers then had a row number beside their key,
and identifiers no key but an index of their resource): every statement runs on both layouts.
"""

from __future__ import annotations

from .dialect import Dialect

_TABLES = """
CREATE TABLE IF NOT EXISTS resources (
    internal_id {ROW_KEY},
    public_id TEXT NOT NULL UNIQUE,
    level INTEGER NOT NULL,
    parent {BIG} REFERENCES resources(internal_id) ON DELETE CASCADE,
    main_tags TEXT NOT NULL,
    patient_tags TEXT NOT NULL DEFAULT '{}',
    protected INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(parent);
CREATE INDEX IF NOT EXISTS resources_level ON resources(level, internal_id);
CREATE TABLE IF NOT EXISTS metadata (
    internal_id {BIG} NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (internal_id, name)
){KEYED};
CREATE TABLE IF NOT EXISTS attachments (
    internal_id {BIG} NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    content_type INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    compressed_size {BIG} NOT NULL,
    uncompressed_size {BIG} NOT NULL,
    compression INTEGER NOT NULL,
    uncompressed_md5 TEXT NOT NULL,
    compressed_md5 TEXT NOT NULL,
    PRIMARY KEY (internal_id, content_type)
){KEYED};
CREATE INDEX IF NOT EXISTS attachments_uuid ON attachments(uuid);
CREATE TABLE IF NOT EXISTS identifiers (
    internal_id {BIG} NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (internal_id, tag)
){KEYED};
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers(value, tag);
CREATE TABLE IF NOT EXISTS changes (
    seq {SEQUENCE_KEY},
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


def schema(dialect: Dialect) -> str:
    """The statements that create the index's tables (if missing), in ``dialect``."""
    return (
        _TABLES.replace("{ROW_KEY}", dialect.row_key)
        .replace("{SEQUENCE_KEY}", dialect.sequence_key)
        .replace("{BIG}", dialect.big_integer)
        .replace("{KEYED}", dialect.keyed_by_primary_key)
    )
