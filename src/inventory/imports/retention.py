"""Retention of finished imports: their jobs, and the row outcomes no recent job uses."""

# A row's outcome is the import's memory of a file (keyed by store and SHA-256, not by
# job): it is kept while any job of that file is unfinished or finished within the
# retention, then deleted; a file imported again after that is decided afresh, row by
# row, against the stock as it then stands, as a file differing by one byte would be.

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

Sync = psycopg.Connection[Any]

BATCH_ROWS = 5000  # one short transaction each: never a long lock on a busy table
MAX_BATCHES = 20  # per sweep: at most 100,000 rows, the rest at the next one

OLD_JOBS = """
DELETE FROM import_jobs WHERE id = ANY(ARRAY(
    SELECT id FROM import_jobs
    WHERE status IN ('done', 'failed') AND updated_at < now() - make_interval(days => %(days)s)
    LIMIT %(batch)s FOR UPDATE SKIP LOCKED))
"""
OLD_ROWS = """
DELETE FROM import_rows WHERE ctid = ANY(ARRAY(
    SELECT r.ctid FROM import_rows r
    WHERE r.recorded_at < now() - make_interval(days => %(days)s)
      AND NOT EXISTS (
        SELECT 1 FROM import_jobs j
        WHERE j.store = r.scope AND j.file_sha = r.file_sha
          AND (j.status NOT IN ('done', 'failed')
               OR j.updated_at >= now() - make_interval(days => %(days)s)))
    ORDER BY r.recorded_at
    LIMIT %(batch)s FOR UPDATE OF r SKIP LOCKED))
"""


@dataclass(frozen=True)
class Expired:
    """What one sweep deleted."""

    jobs: int
    rows: int


def expire(conn: Sync, days: int, batch: int = BATCH_ROWS, batches: int = MAX_BATCHES) -> Expired:
    """Delete, on an autocommit connection, the jobs finished more than `days` ago and the
    outcomes older than that of files no unfinished or recent job uses, `batch` rows a
    statement and at most `batches` statements of each."""
    params = {"days": days, "batch": batch}
    return Expired(_drain(conn, OLD_JOBS, params, batches), _drain(conn, OLD_ROWS, params, batches))


def _drain(conn: Sync, statement: str, params: dict[str, int], batches: int) -> int:
    deleted = 0
    for _ in range(batches):
        count = conn.execute(statement, params).rowcount
        deleted += count
        if count < params["batch"]:
            break
    return deleted
