"""`report_runs` (projections/0012_report_runs.sql, 0036_report_runs_expiry.sql): reports
requested through the API and built by a worker, with every statement on the table.

The API inserts and reads runs on its async connections; the worker claims, finishes,
fails, re-sends and expires them on sync ones, and reads a report's rows (`read_rows`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from inventory.readmodels.rows import Conn, fetch

INSERT = "INSERT INTO report_runs (id, kind, params, requested_by) VALUES (%s, %s, %s, %s)"
SELECT = """
SELECT id::text, kind, status, params, requested_at, started_at, finished_at, error, rows,
       requested_by
FROM report_runs WHERE id = %s
"""
CLAIM = """
UPDATE report_runs SET status = 'running', started_at = now()
WHERE id = %s AND status IN ('queued', 'running') RETURNING kind, params
"""
FINISH = "UPDATE report_runs SET status = 'done', rows = %s, finished_at = now() WHERE id = %s"
FAIL = "UPDATE report_runs SET status = 'failed', error = %s, finished_at = now() WHERE id = %s"
# A queued report whose message is a minute old was lost (Redis down when it was sent, or
# flushed); a running one after 15 minutes lost its worker. Re-sending is safe: see CLAIM.
STALE = """
UPDATE report_runs SET sent_at = now()
WHERE id IN (
    SELECT id FROM report_runs
    WHERE status = 'queued' AND sent_at < now() - interval '1 minute'
       OR status = 'running' AND sent_at < now() - interval '15 minutes'
    ORDER BY sent_at LIMIT 100 FOR UPDATE SKIP LOCKED
) RETURNING id::text
"""

# At most 1,000 a sweep, oldest first: a backlog of expired reports (a lowered retention)
# is worked off over a few sweeps rather than in one long transaction.
EXPIRE = """
DELETE FROM report_runs
WHERE id IN (
    SELECT id FROM report_runs
    WHERE status IN ('done', 'failed') AND finished_at < now() - make_interval(days => %s)
    ORDER BY finished_at LIMIT 1000 FOR UPDATE SKIP LOCKED
)
"""

SyncConn = psycopg.Connection[Any]
Status = Literal["queued", "running", "done", "failed"]


class StoredRun(msgspec.Struct, frozen=True):
    """A `report_runs` row as the API reads it."""

    id: str
    kind: str
    status: Status
    params: dict[str, Any]
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    rows: list[dict[str, Any]] | None
    requested_by: str


async def insert_run(
    conn: Conn, report_id: str, kind: str, params: dict[str, Any], requested_by: str
) -> None:
    """Record a queued report."""
    await conn.execute(INSERT, (report_id, kind, Jsonb(params), requested_by))


async def read_run(conn: Conn, report_id: Any) -> StoredRun | None:
    """The report `report_id` (a UUID), or None."""
    rows = await fetch(conn, SELECT, (report_id,))
    return StoredRun(*rows[0]) if rows else None


def claim(conn: SyncConn, report_id: str) -> tuple[str, dict[str, Any]] | None:
    """Mark a queued or running report running (in a transaction of its own): its kind and
    params, or None when it is done, failed or unknown."""
    with conn.transaction():
        claimed = conn.execute(CLAIM, (report_id,)).fetchone()
    return None if claimed is None else (claimed[0], claimed[1])


def finish(conn: SyncConn, report_id: str, rows: list[Any]) -> None:
    """Keep the report's rows and mark it done."""
    with conn.transaction():
        conn.execute(FINISH, (Jsonb(rows), report_id))


def fail(conn: SyncConn, report_id: str, error: str) -> None:
    """Mark the report failed with `error`."""
    with conn.transaction():
        conn.execute(FAIL, (error, report_id))


def stale(conn: SyncConn) -> list[str]:
    """The ids of the reports whose message looks lost, marked sent again now."""
    with conn.transaction():
        return [row[0] for row in conn.execute(STALE).fetchall()]


def expire(conn: SyncConn, retention_days: int) -> int:
    """Delete the reports finished more than `retention_days` ago; returns how many."""
    with conn.transaction():
        return conn.execute(EXPIRE, (retention_days,)).rowcount


def read_rows(
    conn: SyncConn, query: sql.Composed, convert: Callable[[tuple[Any, ...]], Any]
) -> list[Any]:
    """A report query's rows, converted, read through a server-side cursor 1,000 at a time."""
    rows: list[Any] = []
    with conn.transaction(), conn.cursor("report", row_factory=tuple_row) as cur:
        conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")  # see api/streaming.py
        cur.execute(query)
        while batch := cur.fetchmany(1000):
            rows.extend(convert(row) for row in batch)
    return rows
