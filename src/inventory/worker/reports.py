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

from inventory.readmodels import report_runs
from inventory.readmodels.daily_movements import MovementQuery, movement_row
from inventory.readmodels.stock_levels.queries import level_row, levels_sql
from inventory.worker.context import WorkerContext, current
from inventory.worker.metrics import REPORT_RUNS

log = structlog.get_logger(__name__)


class ReportFailed(Exception):
    """A report that cannot be built from what it asks for (retrying would not help)."""


def _day(value: Any) -> date | None:
    return None if value is None else date.fromisoformat(value)


def build_rows(conn: psycopg.Connection[Any], kind: str, params: dict[str, Any]) -> list[Any]:
    """The report's rows, read through a server-side cursor."""
    stores = params.get("stores")
    if kind == "movements":
        query = MovementQuery(
            stores, params.get("sku"), _day(params.get("from")), _day(params.get("to"))
        ).sql()
        convert = movement_row
    elif kind == "stock":
        low_only = bool(params.get("low_only"))
        query = levels_sql(stores, low_only=low_only, after=None, limit=None)
        convert = level_row
    else:
        raise ReportFailed(f"no report kind {kind!r}")
    try:
        return report_runs.read_rows(conn, query, convert)
    except psycopg.errors.UndefinedTable as missing:
        raise ReportFailed(f"a read model this report needs is not built: {missing}") from None


def requeue_stale(context: WorkerContext) -> int:
    """Send another message for each report whose message looks lost; returns how many."""
    with context.replica.connection() as conn:
        stale = report_runs.stale(conn)
    for report_id in stale:
        build_report.send(report_id)
    return len(stale)


def expire_finished(context: WorkerContext, retention_days: int) -> int:
    """Delete the reports finished more than `retention_days` ago; returns how many."""
    with context.replica.connection() as conn:
        return report_runs.expire(conn, retention_days)


@dramatiq.actor(queue_name="reports", max_retries=5, min_backoff=1_000, max_backoff=30_000)
def build_report(report_id: str) -> None:
    """Build the report `report_id` unless it is already done or failed."""
    structlog.contextvars.bind_contextvars(report=report_id)
    build(current(), report_id)


def build(context: WorkerContext, report_id: str) -> None:
    """Claim the report, build its rows and keep them (or the reason it failed)."""
    with context.replica.connection() as conn:
        claimed = report_runs.claim(conn, report_id)
        if claimed is None:
            log.info("report already finished or unknown")
            return
        kind, params = claimed
        try:
            rows = build_rows(conn, kind, params)
        except ReportFailed as failure:
            report_runs.fail(conn, report_id, str(failure))
            REPORT_RUNS.labels("failed").inc()
            log.warning("report failed", error=str(failure))
            return
        report_runs.finish(conn, report_id, rows)
    REPORT_RUNS.labels("done").inc()
    log.info("report built", kind=kind, rows=len(rows))
