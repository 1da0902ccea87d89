"""The `build_report` actor: runs a requested report on the replica and keeps its rows.

The message carries only the report's id; the row in `report_runs` says what to build.
A redelivered message rebuilds a `running` report from scratch and leaves a `done` or
`failed` one alone, so duplicates change nothing. A finished report is kept
`report_retention_days` (INVENTORY_REPORT_RETENTION_DAYS), then the sweep deletes it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import dramatiq
import psycopg
import structlog
from psycopg.rows import tuple_row
from psycopg.types.json import Jsonb

from inventory.projectors import reports
from inventory.worker.context import WorkerContext, current

log = structlog.get_logger(__name__)

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


class ReportFailed(Exception):
    """A report that cannot be built from what it asks for (retrying would not help)."""


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def build_rows(conn: psycopg.Connection[Any], kind: str, params: dict[str, Any]) -> list[Any]:
    """The report's rows, read through a server-side cursor."""
    stores = params.get("stores")
    if kind == "movements":
        query = reports.MovementQuery(
            stores, params.get("sku"), _day(params.get("from")), _day(params.get("to"))
        ).sql()
        convert = reports.movement_row
    elif kind == "stock":
        low_only = bool(params.get("low_only"))
        query = reports.levels_sql(stores, low_only=low_only, after=None, limit=None)
        convert = reports.level_row
    else:
        raise ReportFailed(f"no report kind {kind!r}")
    rows: list[Any] = []
    try:
        with conn.transaction(), conn.cursor("report", row_factory=tuple_row) as cur:
            conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")  # see api/streaming.py
            cur.execute(query)
            while batch := cur.fetchmany(1000):
                rows.extend(convert(row) for row in batch)
    except psycopg.errors.UndefinedTable as missing:
        raise ReportFailed(f"a read model this report needs is not built: {missing}") from None
    return rows


def requeue_stale(context: WorkerContext) -> int:
    """Send another message for each report whose message looks lost; returns how many."""
    with context.replica.connection() as conn, conn.transaction():
        stale = [row[0] for row in conn.execute(STALE).fetchall()]
    for report_id in stale:
        build_report.send(report_id)
    return len(stale)


def expire_finished(context: WorkerContext, retention_days: int) -> int:
    """Delete the reports finished more than `retention_days` ago; returns how many."""
    with context.replica.connection() as conn, conn.transaction():
        return conn.execute(EXPIRE, (retention_days,)).rowcount


@dramatiq.actor(queue_name="reports", max_retries=5, min_backoff=1_000, max_backoff=30_000)
def build_report(report_id: str) -> None:
    """Build the report `report_id` unless it is already done or failed."""
    structlog.contextvars.bind_contextvars(report=report_id)
    build(current(), report_id)


def build(context: WorkerContext, report_id: str) -> None:
    """Claim the report, build its rows and keep them (or the reason it failed)."""
    with context.replica.connection() as conn:
        with conn.transaction():
            claimed = conn.execute(CLAIM, (report_id,)).fetchone()
        if claimed is None:
            log.info("report already finished or unknown")
            return
        kind, params = claimed
        try:
            rows = build_rows(conn, kind, params)
        except ReportFailed as failure:
            with conn.transaction():
                conn.execute(FAIL, (str(failure), report_id))
            log.warning("report failed", error=str(failure))
            return
        with conn.transaction():
            conn.execute(FINISH, (Jsonb(rows), report_id))
    log.info("report built", kind=kind, rows=len(rows))
