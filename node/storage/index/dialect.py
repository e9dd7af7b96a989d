"""What differs between the SQL of the index backends, so that each statement is written once.

Statements are written with ``?`` placeholders and a few tokens in braces; :meth:`Dialect.sql`
turns them into the backend's text. Tokens:

- ``{NOW_MS}``: the database's own clock in milliseconds since the epoch, so that processes on
  several machines sharing one PostgreSQL agree on it;
- ``{SKIP_LOCKED}``: the clause that lets a claim pass over rows another transaction holds
  (nothing on SQLite, whose writers never overlap);
- ``{LOCK_ROW}``: the clause that locks the rows a write reads before it decides (nothing on
  SQLite, for the same reason).

Parameters are ``?`` or named (``:name``). Casts are written ``CAST(x AS t)``, never ``x::t``, so a ``:`` never reaches the placeholder
rewrite.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Statements kept rendered: the fixed ones, and the lists of placeholders most often asked for.
RENDERED_KEPT = 512
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # a named parameter, :name


@dataclass(frozen=True)
class Dialect:
    name: str
    placeholder: str  # what stands for one parameter
    now_ms: str
    skip_locked: str
    lock_row: str
    # The LIMIT that means no limit at all.
    no_limit: int | None

    def sql(self, text: str) -> str:
        """``text`` in this dialect (computed once per statement)."""
        return _rendered(self, text)

    def json_text(self, column: str, key: str) -> str:
        """The text value of ``key`` in the JSON object held by the TEXT ``column``."""
        if self is SQLITE:
            return f"json_extract({column}, '$.\"{key}\"')"
        return f"(CAST({column} AS jsonb) ->> '{key}')"

    def json_distinct_array(self, expression: str) -> str:
        """An aggregate: the distinct values of ``expression`` in the group as a JSON array, in text."""
        if self is SQLITE:
            return f"json_group_array(DISTINCT {expression})"
        return f"CAST(json_agg(DISTINCT {expression}) AS TEXT)"

    def first_by(self, value: str, key: str) -> str:
        """Two aggregate columns: the smallest ``key`` in the group, and ``value`` on its row."""
        if self is SQLITE:  # a bare column next to MIN takes the value of MIN's row
            return f"MIN({key}), {value}"
        return f"MIN({key}), (array_agg({value} ORDER BY {key}))[1]"


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    now_ms="CAST((julianday('now')-2440587.5)*86400000 AS INTEGER)",
    skip_locked="",
    lock_row="",
    no_limit=-1,
)
POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    now_ms="CAST(extract(epoch FROM clock_timestamp())*1000 AS BIGINT)",
    skip_locked="FOR UPDATE SKIP LOCKED",
    lock_row="FOR UPDATE",
    no_limit=None,  # LIMIT NULL
)


@functools.lru_cache(maxsize=RENDERED_KEPT)
def _rendered(dialect: Dialect, text: str) -> str:
    if dialect.placeholder != "?":
        # psycopg reads % as the start of a placeholder: a literal one is doubled first.
        text = text.replace("%", "%%").replace("?", dialect.placeholder)
        text = _NAMED.sub(r"%(\1)s", text)
    return (
        text.replace("{NOW_MS}", dialect.now_ms)
        .replace("{SKIP_LOCKED}", dialect.skip_locked)
        .replace("{LOCK_ROW}", dialect.lock_row)
    )
