"""The sweep's import retention: finished jobs past it go, and so do the row outcomes of
files no unfinished or recent job uses; in bounded batches, as the app's role."""

from __future__ import annotations

import hashlib
import uuid

import psycopg

from inventory.imports import retention
from inventory.runtime.settings import Settings

OLD, RECENT = 40, 2  # days ago, against a retention of 30


def sha(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


def job(conn: psycopg.Connection, store: str, file: bytes, status: str, days_ago: int) -> str:
    """A job of `file` at `store` last touched `days_ago` days ago."""
    job_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO import_jobs (id, store, status, file_sha, created_by, role, updated_at)"
        " VALUES (%s, %s, %s, %s, 'test', 'admin', now() - make_interval(days => %s))",
        (job_id, store, status, file, days_ago),
    )
    return str(job_id)


def outcomes(conn: psycopg.Connection, store: str, file: bytes, lines: int, days_ago: int) -> None:
    """`lines` row outcomes of `file` at `store`, recorded `days_ago` days ago."""
    conn.execute(
        "INSERT INTO import_rows (scope, file_sha, line, code, recorded_at)"
        " SELECT %s, %s, line, NULL, now() - make_interval(days => %s)"
        " FROM generate_series(2, %s + 1) AS line",
        (store, file, days_ago, lines),
    )


def kept(conn: psycopg.Connection, store: str) -> tuple[set[str], dict[bytes, int]]:
    """The store's job ids, and its outcomes counted per file."""
    jobs = {
        str(r[0]) for r in conn.execute("SELECT id FROM import_jobs WHERE store = %s", (store,))
    }
    rows = conn.execute(
        "SELECT file_sha, count(*) FROM import_rows WHERE scope = %s GROUP BY file_sha", (store,)
    ).fetchall()
    return jobs, {bytes(r[0]): int(r[1]) for r in rows}


def test_old_jobs_and_unused_outcomes_go_in_batches_and_the_rest_stay(
    settings: Settings, store_id: str
) -> None:
    old, reused, running, cli, fresh = (sha(f"{store_id}-{n}") for n in range(5))
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as admin:
        gone = job(admin, store_id, old, "done", OLD)
        failed = job(admin, store_id, old, "failed", OLD)
        outcomes(admin, store_id, old, 7, OLD)
        job(admin, store_id, reused, "done", OLD)
        recent = job(admin, store_id, reused, "done", RECENT)  # the same file again, lately
        outcomes(admin, store_id, reused, 3, OLD)
        unfinished = job(admin, store_id, running, "running", OLD)
        outcomes(admin, store_id, running, 3, OLD)
        outcomes(admin, store_id, cli, 4, OLD)  # `inventory import` runs have no job
        outcomes(admin, store_id, fresh, 2, RECENT)
        outcomes(admin, f"{store_id}x", old, 2, RECENT)  # another store's copy of the file

    with psycopg.connect(settings.primary_url, autocommit=True) as app:
        first = retention.expire(app, 30, batch=2, batches=2)
        rest = [retention.expire(app, 30, batch=2, batches=2) for _ in range(6)]
        jobs, rows = kept(app, store_id)
        _, neighbour = kept(app, f"{store_id}x")

    assert first.rows <= 4 and first.jobs <= 4  # bounded: two batches of two
    assert first.jobs + sum(r.jobs for r in rest) >= 3
    assert gone not in jobs and failed not in jobs
    assert {recent, unfinished} <= jobs
    assert rows == {reused: 3, running: 3, fresh: 2}
    assert neighbour == {old: 2}
