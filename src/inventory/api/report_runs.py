"""Reports run by a worker: `POST /v1/reports` queues one, `GET /v1/reports/{id}` reads it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
import structlog
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from inventory.api import streaming
from inventory.api.errors import ApiError, Problem
from inventory.api.schemas import Body
from inventory.readmodels import report_runs
from inventory.readmodels.report_runs import Status
from inventory.security.policy import RouteClass, protect, require_store
from inventory.security.principal import Principal, Role

log = structlog.get_logger(__name__)

ApiRequest = Request[Principal, Any, State]
Format = Literal["json", "csv"]


class MovementParams(Body):
    """`params` of a movements report: as `GET /v1/reports/movements` takes them."""

    store: str | None = None
    sku: str | None = None
    start: date | None = msgspec.field(default=None, name="from")
    end: date | None = msgspec.field(default=None, name="to")


class StockParams(Body):
    """`params` of a stock report: every level of the stores, or the low ones."""

    store: str | None = None
    low_only: bool = False


class NewReport(Body):
    """POST /v1/reports."""

    kind: Literal["movements", "stock"]
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class ReportRun(msgspec.Struct, frozen=True, kw_only=True):
    """A requested report; `rows` once done, `download` the same rows as CSV."""

    id: str
    kind: str
    status: Status
    params: dict[str, Any]
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    rows: list[dict[str, Any]] | None = None
    download: str | None = None


def checked_params(principal: Principal, data: NewReport) -> dict[str, Any]:
    """The params, validated for the kind, with the stores the report covers (`stores`:
    those named, else the caller's scope; null for every store)."""
    shape: type[MovementParams | StockParams]
    shape = MovementParams if data.kind == "movements" else StockParams
    try:
        params = msgspec.convert(data.params, shape)
    except msgspec.ValidationError as error:
        raise ApiError(422, "validation_failed", f"params: {error}") from None
    named = [part for part in params.store.split(",") if part] if params.store else None
    require_store(principal, *(named or []))
    result: dict[str, Any] = msgspec.to_builtins(params)
    result["stores"] = principal.scoped(named)
    return result


def may_read(principal: Principal, requested_by: str, params: dict[str, Any]) -> bool:
    """Forbidden outside the caller's scope; readable by its requester, admins, auditors."""
    stores = params.get("stores")
    if stores is None:
        require_store(principal, "*")
    else:
        require_store(principal, *stores)
    return principal.id == requested_by or principal.role in (Role.ADMIN, Role.AUDITOR)


def _run(stored: report_runs.StoredRun) -> ReportRun:
    download = f"/v1/reports/{stored.id}?format=csv" if stored.status == "done" else None
    return ReportRun(
        id=stored.id,
        kind=stored.kind,
        status=stored.status,
        params=stored.params,
        requested_at=stored.requested_at,
        started_at=stored.started_at,
        finished_at=stored.finished_at,
        error=stored.error,
        rows=stored.rows,
        download=download,
    )


class ReportRunController(Controller):
    """Reports built asynchronously on a worker (queue `reports`)."""

    path = "/v1/reports"
    tags = ("reports",)

    @post(
        "",
        summary="Request a report",
        status_code=202,
        **protect(RouteClass.REPORTS, responses={422: ResponseSpec(Problem)}),
    )
    async def request_report(
        self, request: ApiRequest, state: State, data: JSONBody[NewReport]
    ) -> ReportRun:
        """Queue a `movements` or `stock` report; poll `GET /v1/reports/{id}` for it."""
        params = checked_params(request.user, data)
        report_id = str(uuid.uuid4())
        # The replica itself, never a read standby (read-only: ReadOnlySqlTransaction).
        async with state.resources.replica_itself.connection() as conn:
            await report_runs.insert_run(conn, report_id, data.kind, params, request.user.id)
        try:
            # A thread: the send is a blocking Redis call, and a Redis failing over must
            # hold this request only, never the event loop's others.
            await asyncio.to_thread(state.queue_report, report_id)  # the build_report actor
        except Exception as error:  # noqa: BLE001 - the row stands; the worker's sweep re-sends
            log.warning("report not queued; the sweep will send it", error=str(error))
        return ReportRun(
            id=report_id,
            kind=data.kind,
            status="queued",
            params=params,
            requested_at=datetime.now().astimezone(),
        )

    @get(
        "/{report_id:uuid}",
        summary="A requested report",
        **protect(
            RouteClass.REPORTS,
            responses={
                200: ResponseSpec(ReportRun, description="JSON, or the rows as CSV"),
                404: ResponseSpec(Problem, description="report_not_found"),
            },
        ),
    )
    async def read_report(
        self,
        request: ApiRequest,
        state: State,
        report_id: uuid.UUID,
        output: Annotated[Format, Parameter(query="format")] = "json",
    ) -> Response[Any]:
        """The report's status, and its rows once done (`format=csv`: the rows as CSV).
        Only its requester, admins and auditors may read it."""
        # Where the run was written: a standby may not have the row yet (a 404 to a
        # client polling the id it was just given).
        async with state.resources.replica_itself.connection() as conn:
            stored = await report_runs.read_run(conn, report_id)
        if stored is None or not may_read(request.user, stored.requested_by, stored.params):
            raise ApiError(404, "report_not_found", f"No report {report_id} of yours.")
        run = _run(stored)
        if output == "csv" and run.rows is not None:
            columns = list(run.rows[0]) if run.rows else ["store", "sku"]
            batches = streaming.listed(run.rows)
            return streaming.csv_response(columns, batches, f"report-{report_id}.csv")
        return Response(run)
