"""Bulk import jobs (api.md, Bulk import): upload a CSV body, follow the job, list bad rows."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from psycopg_pool import AsyncConnectionPool

from inventory.api.errors import ApiError, Problem
from inventory.api.schemas import Page
from inventory.imports import jobs, outcomes
from inventory.imports.outcomes import Conn
from inventory.imports.wakeups import wake
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal

ApiRequest = Request[Principal, Any, State]
PROBLEM = ResponseSpec(Problem)
Pool = AsyncConnectionPool[Any]
T = TypeVar("T")
MAX_IMPORT_BYTES = 100 * 1024 * 1024
StoreParam = Annotated[
    str | None,
    Parameter(
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.]*$",
        description="The store whose `on_hand` the file counts (a manager's own store).",
    ),
]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
After = Annotated[int | None, Parameter(ge=1, description="`next_cursor`: the last line seen.")]


class ImportJob(msgspec.Struct, frozen=True, kw_only=True):
    """A job: `rows` and `failed` count the rows decided so far; `error` says why a
    `failed` job's file was refused as a whole."""

    id: str
    status: str
    store: str | None
    rows: int
    failed: int
    errors_url: str
    error: str | None
    created_at: datetime


class ImportRowError(msgspec.Struct, frozen=True):
    """A bad row: its line in the file, its SKU if readable, the API's code and why."""

    line: int
    sku: str | None
    code: str
    message: str


def _view(job: jobs.Job) -> ImportJob:
    return ImportJob(
        id=str(job.id),
        status="queued" if job.status == "receiving" else job.status,
        store=job.store or None,
        rows=job.rows,
        failed=job.failed,
        errors_url=f"/v1/imports/{job.id}/errors",
        error=job.error,
        created_at=job.created_at,
    )


def _check_upload(request: ApiRequest, store: str | None) -> None:
    """403 for a manager without a store; 415 unless text/csv; 413 when declared too large."""
    if store is None and request.user.role.value != "admin":
        raise ApiError(403, "forbidden", "A manager imports for a store: add ?store=.")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "text/csv":
        shown = media or "an untyped body"
        raise ApiError(
            415, "unsupported_media_type", f"This route takes `text/csv`, not {shown!r}."
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise ApiError(413, "body_too_large", "The file is larger than 100 MiB.")


async def _receive(request: ApiRequest, primary: Pool, job: uuid.UUID) -> tuple[bytes, int]:
    """Stream the body into the job's chunks, 1 MiB at a time; its SHA-256 and size. A
    connection is held per chunk, not per upload: slow uploads never drain the pool."""
    digest, size, number, pending = hashlib.sha256(), 0, 0, bytearray()
    async for piece in request.stream():
        size += len(piece)
        if size > MAX_IMPORT_BYTES:
            raise ApiError(413, "body_too_large", "The file is larger than 100 MiB.")
        digest.update(piece)
        pending += piece
        if len(pending) >= jobs.CHUNK_BYTES:
            await _store_chunk(primary, job, number, bytes(pending))
            number, pending = number + 1, bytearray()
    if pending:
        await _store_chunk(primary, job, number, bytes(pending))
    return digest.digest(), size


async def _store_chunk(primary: Pool, job: uuid.UUID, number: int, data: bytes) -> None:
    if not await _committed(primary, lambda conn: jobs.add_chunk(conn, job, number, data)):
        raise ApiError(408, "body_incomplete", "The upload went silent and was given up.")


async def _committed(primary: Pool, step: Callable[[Conn], Awaitable[T]]) -> T:
    """One step on a pooled primary connection, committed when the pool takes it back."""
    async with primary.connection() as conn:
        return await step(conn)


async def _visible(state: State, principal: Principal, job_id: uuid.UUID) -> jobs.Job:
    """The job if the caller may see it: an admin any, a manager those of its stores."""
    async with state.resources.primary.connection() as conn:
        job = await jobs.get(conn, job_id)
    if job is None or not (principal.all_stores or (job.store and principal.in_scope(job.store))):
        raise ApiError(404, "import_not_found", f"No import {job_id} in your scope.")
    return job


class ImportController(Controller):
    """`/v1/imports`: admins, and managers for their stores."""

    path = "/v1/imports"
    tags = ("imports",)

    @post(
        "/",
        summary="Import a CSV file as a job",
        status_code=202,
        request_max_body_size=None,  # streamed and capped at 100 MiB here, never held
        **protect(
            RouteClass.MANAGER_COMMAND,
            store="store",
            responses={408: PROBLEM, 413: PROBLEM, 415: PROBLEM, 422: PROBLEM},
        ),
    )
    async def create_import(
        self, request: ApiRequest, state: State, store: StoreParam = None
    ) -> Response[ImportJob]:
        """202 with the job; a `text/csv` body up to 100 MiB (docs/import.md)."""
        _check_upload(request, store)
        primary, user = state.resources.primary, request.user
        job_id = await _committed(
            primary, lambda conn: jobs.create(conn, store or "", user.id, user.role.value)
        )
        try:
            sha, size = await _receive(request, primary, job_id)
        except Exception as error:
            # Too large, given up, or the client went away mid-body: nothing is imported.
            code, why = (
                (error.code, error.detail)
                if isinstance(error, ApiError)
                else ("body_incomplete", "the upload broke off")
            )
            await _committed(primary, lambda conn: jobs.discard(conn, job_id, code, why))
            raise
        job = await _committed(primary, lambda conn: jobs.received(conn, job_id, sha, size))
        if job is None:
            raise ApiError(408, "body_incomplete", "The upload went silent and was given up.")
        wake(str(job.id))
        headers = {"Location": f"/v1/imports/{job.id}"}
        return Response(_view(job), status_code=202, headers=headers)

    @get(
        "/{job_id:uuid}",
        summary="An import job",
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def get_import(self, request: ApiRequest, state: State, job_id: uuid.UUID) -> ImportJob:
        """The job: status queued, running, done or failed; 404 `import_not_found`."""
        return _view(await _visible(state, request.user, job_id))

    @get(
        "/{job_id:uuid}/errors",
        summary="An import job's bad rows",
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def list_import_errors(
        self,
        request: ApiRequest,
        state: State,
        job_id: uuid.UUID,
        cursor: After = None,
        limit: Limit = 100,
    ) -> Page[ImportRowError]:
        """Bad rows in line order, a page at a time (`cursor`: the previous `next_cursor`)."""
        job = await _visible(state, request.user, job_id)
        if job.file_sha is None:
            return Page([], None)
        async with state.resources.primary.connection() as conn:
            rows = await outcomes.failures(conn, job.store, job.file_sha, cursor or 0, limit + 1)
        items = [ImportRowError(r.line, r.sku, r.code or "", r.message or "") for r in rows[:limit]]
        return Page(items, str(items[-1].line) if len(rows) > limit else None)
