"""Rows' outcomes on the primary, keyed by (scope, file SHA-256, line): the import's memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from inventory.imports.plan import RowOutcome

Conn = psycopg.AsyncConnection[Any]

LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('import:' || %s || ':' || %s, 0))"
KNOWN = """
SELECT line FROM import_rows
WHERE scope = %s AND file_sha = %s AND line = ANY(%s)
"""
RECORD = """
INSERT INTO import_rows (scope, file_sha, line, sku, code, message)
SELECT %s, %s, line, sku, code, message
FROM unnest(%s::integer[], %s::text[], %s::text[], %s::text[]) AS r(line, sku, code, message)
"""
FAILURES = """
SELECT line, sku, code, message FROM import_rows
WHERE scope = %s AND file_sha = %s AND code IS NOT NULL AND line > %s
ORDER BY line LIMIT %s
"""
SUMMARY = """
SELECT count(*), count(code) FROM import_rows WHERE scope = %s AND file_sha = %s
"""


async def lock_and_known(conn: Conn, scope: str, sha: bytes, lines: Sequence[int]) -> set[int]:
    """Inside the batch's transaction: serialise importers of the same file (a resumed job
    beside a stale one), then the lines whose outcome is already recorded."""
    await conn.execute(LOCK, (scope, sha.hex()))
    cursor = await conn.execute(KNOWN, (scope, sha, list(lines)))
    return {line for (line,) in await cursor.fetchall()}


async def record(conn: Conn, scope: str, sha: bytes, outcomes: Sequence[RowOutcome]) -> None:
    """Record the outcomes, in the transaction that appends their rows' events."""
    if not outcomes:
        return
    columns = (
        [o.line for o in outcomes],
        [_clean(o.sku) for o in outcomes],
        [o.code for o in outcomes],
        [_clean(o.message) for o in outcomes],
    )
    await conn.execute(RECORD, (scope, sha, *columns))


async def failures(
    conn: Conn, scope: str, sha: bytes, after: int = 0, limit: int = 1000
) -> list[RowOutcome]:
    """The file's bad rows after line `after`, in line order."""
    cursor = await conn.execute(FAILURES, (scope, sha, after, limit))
    return [RowOutcome(*row) for row in await cursor.fetchall()]


async def summary(conn: Conn, scope: str, sha: bytes) -> tuple[int, int]:
    """How many rows of the file have an outcome, and how many of those failed."""
    cursor = await conn.execute(SUMMARY, (scope, sha))
    row = await cursor.fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _clean(text: str | None) -> str | None:
    """Text Postgres can store: no NUL, no lone surrogates (from bytes that were not UTF-8),
    and short enough to list."""
    if text is None:
        return None
    text = text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode()
    return text[:500]
