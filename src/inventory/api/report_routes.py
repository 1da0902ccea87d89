"""Reports on the replica: movement totals (streamed JSON or CSV) and low stock."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Stream

from inventory.api import reads, schemas, streaming
from inventory.api.errors import ApiError, Problem
from inventory.readmodels.daily_movements import MOVEMENT_COLUMNS, MovementQuery, movement_row
from inventory.readmodels.stock_levels.queries import low_stock
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal

ApiRequest = Request[Principal, Any, State]

Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
MinPosition = Annotated[int | None, reads.MinPosition]
StoreFilter = Annotated[str | None, Parameter(description="Store id(s), comma-separated.")]
Format = Literal["json", "csv"]
QuantityValue = int | str


class MovementTotal(msgspec.Struct, frozen=True):
    """One store, SKU and event type over the days asked for."""

    store: str
    sku: str
    type: str
    count: int
    quantity: QuantityValue


class LowStockItem(msgspec.Struct, frozen=True, kw_only=True):
    """A stock level whose `available` is below its reorder point (`reorder_min`)."""

    store: str
    sku: str
    on_hand: QuantityValue
    reserved: QuantityValue
    available: QuantityValue
    in_transit_in: QuantityValue
    in_transit_out: QuantityValue
    reorder_min: QuantityValue
    reorder_max: QuantityValue | None
    version: int
    updated_at: datetime


def scope_of(principal: Principal, store: str | None) -> list[str] | None:
    """The stores a report covers: those asked for (the guard checked them), else the
    caller's whole scope (None: every store)."""
    requested = [part for part in store.split(",") if part] if store else None
    return principal.scoped(requested)


def single(store: str | None) -> str | None:
    """The store whose read position a response reports (None across stores)."""
    return store if store and "," not in store else None


def stream_movements(
    pool: Any, query: MovementQuery, output: Format, headers: dict[str, str]
) -> Stream:
    """The movement totals as a streamed JSON document or CSV file."""
    batches = streaming.rows_of(pool, query.sql(), movement_row)
    if output == "csv":
        return streaming.csv_response(MOVEMENT_COLUMNS, batches, "movements.csv", headers)
    return Stream(streaming.json_document(batches), media_type="application/json", headers=headers)


MOVEMENT_RESPONSES = {
    200: ResponseSpec(
        schemas.Page[MovementTotal],
        description="JSON (`format=json`), or CSV with the same columns (`format=csv`)",
    ),
}


def _cursor(raw: str | None) -> tuple[str, str] | None:
    if raw is None:
        return None
    try:
        store, sku = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        raise ApiError(422, "validation_failed", "The cursor is not one this API issued.") from None
    return str(store), str(sku)


def _next(items: list[dict[str, Any]], limit: int) -> str | None:
    if len(items) < limit:
        return None
    last = json.dumps([items[-1]["store"], items[-1]["sku"]]).encode()
    return base64.urlsafe_b64encode(last).decode()


class ReportController(Controller):
    """`GET /v1/reports/movements` and `GET /v1/reports/low-stock`."""

    path = "/v1/reports"
    tags = ("reports",)

    @get(
        "/movements",
        summary="Movement totals",
        **protect(RouteClass.REPORTS, store="store", responses=MOVEMENT_RESPONSES),
    )
    async def movements(
        self,
        *,
        request: ApiRequest,
        state: State,
        store: StoreFilter = None,
        sku: str | None = None,
        start: Annotated[
            date | None, Parameter(query="from", description="First day (the store's local day).")
        ] = None,
        end: Annotated[
            date | None, Parameter(query="to", description="Last day (the store's local day).")
        ] = None,
        output: Annotated[Format, Parameter(query="format")] = "json",
        min_position: MinPosition = None,
    ) -> Stream:
        """Per store, SKU and event type: how many events and their total quantity, over
        each store's local days `from`..`to` (both included). Streamed, so any range fits."""
        if start and end and start > end:
            raise ApiError(422, "validation_failed", "`from` is after `to`.")
        pool = state.resources.replica
        headers = await reads.prepare(pool, min_position, single(store))
        query = MovementQuery(scope_of(request.user, store), sku, start, end)
        return stream_movements(pool, query, output, headers)

    @get(
        "/low-stock",
        summary="Items below their reorder point",
        **protect(RouteClass.REPORTS, store="store", responses={503: ResponseSpec(Problem)}),
    )
    async def low_stock(
        self,
        *,
        request: ApiRequest,
        state: State,
        store: StoreFilter = None,
        cursor: Annotated[str | None, Parameter(description="`next_cursor`.")] = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[schemas.Page[LowStockItem]]:
        """Stock levels whose `available` is below `reorder_min`, by store and SKU."""
        pool = state.resources.replica
        headers = await reads.prepare(pool, min_position, single(store))
        stores = scope_of(request.user, store)
        after = _cursor(cursor)
        async with pool.connection() as conn:
            items = await low_stock(conn, stores, after, limit)
        page = schemas.Page(msgspec.convert(items, list[LowStockItem]), _next(items, limit))
        return Response(page, headers=headers)
