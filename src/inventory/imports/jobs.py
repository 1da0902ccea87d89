"""Import jobs on the primary: the received body as chunks, the job's status and counts."""

# The job row is the truth; a queue message only wakes a worker. A job is `receiving`
# while its body streams in, `queued` once whole, `running` while a worker imports it
# (its updated_at advancing batch by batch), then `done` or `failed`. A running job whose
# updated_at stands still was abandoned by a killed worker: the sweep queues it again, and
# the rows' outcomes make the rerun skip what landed. A receiving job's updated_at
# advances with each chunk; one silent for long (its API process was killed mid-upload)
# is failed by the sweep and its chunks deleted, so a broken upload holds no space.

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from inventory.imports.outcomes import Conn

Sync = psycopg.Connection[Any]

CHUNK_BYTES = 1 << 20
FAIL = "UPDATE import_jobs SET status = 'failed', error = %s, updated_at = now() WHERE id = %s"
COLUMNS = "id, store, status, file_sha, size, rows, failed, error, created_by, created_at"


@dataclass(frozen=True)
class Job:
    """An import job as stored."""

    id: uuid.UUID
    store: str
    status: str
    file_sha: bytes | None
    size: int
    rows: int
    failed: int
    error: str | None
    created_by: str
    created_at: datetime


async def create(conn: Conn, store: str, created_by: str, role: str) -> uuid.UUID:
    """A new job, receiving its body."""
    job = uuid.uuid4()
    await conn.execute(
        "INSERT INTO import_jobs (id, store, created_by, role) VALUES (%s, %s, %s, %s)",
        (job, store, created_by, role),
    )
    return job


async def add_chunk(conn: Conn, job: uuid.UUID, number: int, data: bytes) -> bool:
    """Store one chunk of a body still being received; False when the sweep has given the
    upload up (it went silent for too long)."""
    cursor = await conn.execute(
        "WITH alive AS (UPDATE import_jobs SET updated_at = now()"
        " WHERE id = %s AND status = 'receiving' RETURNING id)"
        " INSERT INTO import_chunks (job_id, n, data) SELECT id, %s, %s FROM alive",
        (job, number, data),
    )
    return cursor.rowcount == 1


async def received(conn: Conn, job: uuid.UUID, sha: bytes, size: int) -> Job | None:
    """The whole body is stored: the job is queued; None when the sweep gave it up."""
    cursor = await conn.execute(
        f"UPDATE import_jobs SET status = 'queued', file_sha = %s, size = %s, updated_at = now()"
        f" WHERE id = %s AND status = 'receiving' RETURNING {COLUMNS}",
        (sha, size, job),
    )
    row = await cursor.fetchone()
    return None if row is None else Job(*row)


async def discard(conn: Conn, job: uuid.UUID, code: str, message: str) -> None:
    """Give up on a body (too large, cut short): drop its chunks, fail the job."""
    await conn.execute("DELETE FROM import_chunks WHERE job_id = %s", (job,))
    await conn.execute(FAIL, (f"{code}: {message}", job))


async def get(conn: Conn, job: uuid.UUID) -> Job | None:
    """The job, or None."""
    cursor = await conn.execute(f"SELECT {COLUMNS} FROM import_jobs WHERE id = %s", (job,))
    row = await cursor.fetchone()
    return None if row is None else Job(*row)


def claim(conn: Sync, job: uuid.UUID) -> tuple[Job, str] | None:
    """Mark a queued (or abandoned running) job running; the job and its sender's role."""
    row = conn.execute(
        f"UPDATE import_jobs SET status = 'running', updated_at = now()"
        f" WHERE id = %s AND status IN ('queued', 'running') RETURNING {COLUMNS}, role",
        (job,),
    ).fetchone()
    return None if row is None else (Job(*row[:-1]), str(row[-1]))


def progress(conn: Sync, job: uuid.UUID, rows: int, failed: int) -> None:
    """The counts so far; also shows the job is alive."""
    conn.execute(
        "UPDATE import_jobs SET rows = %s, failed = %s, updated_at = now()"
        " WHERE id = %s AND status = 'running'",
        (rows, failed, job),
    )


def finish(conn: Sync, job: uuid.UUID, rows: int, failed: int) -> None:
    """The job is done: its counts, and its body no longer kept."""
    conn.execute(
        "UPDATE import_jobs SET status = 'done', rows = %s, failed = %s, updated_at = now()"
        " WHERE id = %s",
        (rows, failed, job),
    )
    conn.execute("DELETE FROM import_chunks WHERE job_id = %s", (job,))


def fail(conn: Sync, job: uuid.UUID, error: str) -> None:
    """The job failed as a whole (its file refused): say why."""
    conn.execute(FAIL, (error[:1000], job))


def stalled(conn: Sync, seconds: float) -> list[str]:
    """Queued jobs, and running ones silent for `seconds`: those a lost message or a
    killed worker left behind."""
    rows = conn.execute(
        "SELECT id FROM import_jobs WHERE status = 'queued'"
        " OR (status = 'running' AND updated_at < now() - make_interval(secs => %s))",
        (seconds,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def abandon_uploads(conn: Sync, seconds: float) -> int:
    """Fail the uploads silent for `seconds` (an API process killed mid-body) and delete
    their chunks; how many."""
    cursor = conn.execute(
        "WITH gone AS (UPDATE import_jobs SET status = 'failed', updated_at = now(),"
        " error = 'body_incomplete: the upload stopped arriving'"
        " WHERE status = 'receiving' AND updated_at < now() - make_interval(secs => %s)"
        " RETURNING id),"
        " dropped AS (DELETE FROM import_chunks WHERE job_id IN (SELECT id FROM gone))"
        " SELECT count(*) FROM gone",
        (seconds,),
    )
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def body(conn: Sync, job: uuid.UUID) -> Iterator[bytes]:
    """The job's body, chunk by chunk, read one chunk at a time."""
    number = 0
    while True:
        row = conn.execute(
            "SELECT data FROM import_chunks WHERE job_id = %s AND n = %s", (job, number)
        ).fetchone()
        if row is None:
            return
        yield bytes(row[0])
        number += 1
