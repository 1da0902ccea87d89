"""The import actor: run one job from its stored body; the sweep requeues stalled jobs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import dramatiq
import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from inventory.domain.authority import Authority
from inventory.imports import jobs, retention
from inventory.imports.csvfile import FileRefused
from inventory.imports.decisions import Scope
from inventory.imports.importer import Importer
from inventory.imports.rows import row_plan
from inventory.imports.wakeups import ACTOR, QUEUE, wake
from inventory.runtime.resources import retry_when, writer_checks
from inventory.worker.context import WorkerContext, current
from inventory.worker.wakeups import wake as wake_projectors

log = structlog.get_logger(__name__)

TIME_LIMIT_MS = 6 * 3600 * 1000  # a 100 MiB file takes minutes; Dramatiq's default is 10
# An upload whose next 1 MiB has not arrived in ten stall periods (10 min by default) has
# lost its API process or its client: nginx gives a silent body up after 60 s.
UPLOAD_SILENCE_FACTOR = 10


@dramatiq.actor(
    actor_name=ACTOR,
    queue_name=QUEUE,
    # A write that reached a read-only primary waits for the writable one, however long.
    retry_when=retry_when(5),
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=TIME_LIMIT_MS,
)
def run_import(job_id: str) -> None:
    """Import the job's file; a rerun (retry, sweep) skips the rows that already landed."""
    context = current()
    primary = context.settings.primary_url
    options = context.commands.options
    with psycopg.connect(primary, autocommit=True, **options) as conn:
        claimed = jobs.claim(conn, uuid.UUID(job_id))
        if claimed is None:
            return  # done, failed or unknown: nothing to do
        job, role = claimed
        asyncio.run(_run(conn, primary, options, job, role))


async def _run(
    conn: psycopg.Connection[Any],
    primary: str,
    options: dict[str, Any],
    job: jobs.Job,
    role: str,
) -> None:
    store = job.store or None
    actor = {"id": job.created_by, "kind": "import", "name": job.created_by, "role": role}
    authority = Authority(role="admin" if role == "admin" else "manager", api_key=False)
    scope = Scope(store, authority, job.created_at, f"import job {job.id}")
    done = 0

    def progress(rows: int) -> None:
        nonlocal done
        done += rows
        jobs.progress(conn, job.id, done, 0)

    def committed(position: int) -> None:
        wake_projectors(["", store], position)  # served again once the replica has it

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        primary, min_size=1, max_size=1, kwargs=options, open=False, **writer_checks(primary)
    )
    async with pool:
        try:
            report = await Importer(pool, row_plan).run(
                jobs.body(conn, job.id),
                sha=job.file_sha or b"",
                scope=scope,
                actor=actor,
                job=str(job.id),
                progress=progress,
                committed=committed,
            )
        except FileRefused as refused:
            jobs.fail(conn, job.id, f"{refused.code}: {refused.message}")
            return
    jobs.finish(conn, job.id, report.rows, report.failed)
    log.info("import done", job=str(job.id), rows=report.rows, failed=report.failed)


def sweep(context: WorkerContext) -> int:
    """Queue the jobs a lost message or a killed worker left behind; how many."""
    primary, options = context.settings.primary_url, context.commands.options
    silence = context.settings.import_stall_seconds
    with psycopg.connect(primary, autocommit=True, **options) as conn:
        stalled = jobs.stalled(conn, silence)
        abandoned = jobs.abandon_uploads(conn, silence * UPLOAD_SILENCE_FACTOR)
    if abandoned:
        log.warning("import uploads abandoned mid-body; their chunks deleted", jobs=abandoned)
    for job_id in stalled:
        wake(job_id)
    return len(stalled)


def expire_finished(context: WorkerContext) -> retention.Expired:
    """Delete the jobs and row outcomes past INVENTORY_IMPORT_RETENTION_DAYS, in batches."""
    primary, options = context.settings.primary_url, context.commands.options
    with psycopg.connect(primary, autocommit=True, **options) as conn:
        return retention.expire(conn, context.settings.import_retention_days)
