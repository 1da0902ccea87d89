"""Stock queries on the replica (api.md "Queries"): levels, as_of/known_at, ledger, search,
alerts. Every handler waits for `min_position` and answers with `X-Read-Position`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from inventory.api import reads
from inventory.api.errors import ApiError, Problem
from inventory.api.query_views import (
    LedgerEntry,
    SearchHit,
    StockLevel,
    decode_cursor,
    decode_int_cursor,
    encode_cursor,
    ledger_entry,
    level,
    search_hits,
)
from inventory.api.schemas import Page
from inventory.domain.window import representable_problem
from inventory.readmodels import catalog
from inventory.readmodels.bitemporal import PastLevel, level_at
from inventory.readmodels.ledger import ledger_page
from inventory.readmodels.search import search as search_products
from inventory.readmodels.stock_levels import queries as levels
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import Principal
from inventory.service.result import show_quantity

ApiRequest = Request[Principal, Any, State]
Conn = psycopg.AsyncConnection[Any]
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
Cursor = Annotated[str | None, Parameter(description="`next_cursor` of the previous page.")]
MinPosition = Annotated[int | None, reads.MinPosition]
StoreList = Annotated[str | None, Parameter(description="Only these stores (comma-separated).")]
NOT_FOUND = {404: ResponseSpec(Problem, description="store_not_found / product_not_found")}
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


async def decimals_of(conn: Conn, sku: str) -> int:
    """The product's `decimals`; 404 `product_not_found` when the catalog lacks it."""
    decimals = await catalog.decimals_of(conn, sku)
    if decimals is None:
        raise ApiError(404, "product_not_found", f"No product has the SKU {sku!r}.")
    return decimals


async def require_store(conn: Conn, store: str) -> None:
    """404 `store_not_found` unless the store exists on the read side."""
    if not await catalog.store_exists(conn, store):
        raise ApiError(404, "store_not_found", f"No store has the id {store!r}.")


def page(items: list[Any], limit: int, key: Any, headers: dict[str, str]) -> Response[Any]:
    """A `{items, next_cursor}` response with the read headers."""
    next_cursor = encode_cursor(key(items[-1])) if len(items) == limit else None
    return Response(Page(items, next_cursor), headers=headers)


def past_level(
    store: str, sku: str, decimals: int, past: PastLevel, current: StockLevel | None
) -> StockLevel:
    """The bitemporal answer in the shape of a level (reorder point as it is now)."""
    return StockLevel(
        store=store,
        sku=sku,
        name=current.name if current else None,
        on_hand=show_quantity(past.on_hand, decimals),
        reserved=show_quantity(past.reserved, decimals),
        available=show_quantity(past.available, decimals),
        in_transit_in=show_quantity(past.in_transit_in, decimals),
        in_transit_out=show_quantity(past.in_transit_out, decimals),
        reorder_min=current.reorder_min if current else None,
        reorder_max=current.reorder_max if current else None,
        version=past.version,
        updated_at=None,
    )


def check_times(**times: datetime | None) -> None:
    """422 `validation_failed` for a query time Python or Postgres cannot place in every
    zone (a year-1 or year-9999 value): the window of domain/window.py's REPRESENTABLE."""
    problems = [
        problem
        for name, value in times.items()
        if value is not None and (problem := representable_problem(value, name)) is not None
    ]
    if problems:
        raise ApiError(
            422, "validation_failed", "A time lies outside the calendar.", errors=problems
        )


class StockQueryController(Controller):
    """Stock levels, the ledger, search and alerts, read from the replica."""

    path = "/v1"
    tags = ("queries",)

    @get(
        "/stores/{store:str}/stock",
        summary="A store's stock levels",
        **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND),
    )
    async def list_stock(
        self,
        *,
        state: State,
        store: str,
        sku: str | None = None,
        below_reorder: bool | None = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[StockLevel]]:
        """Levels by SKU; `sku` filters by prefix, `below_reorder` by the reorder point."""
        after = decode_cursor(cursor)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            rows = await levels.store_levels(
                conn, store, after, sku_prefix=sku, below=below_reorder, limit=limit
            )
            items = [level(row) for row in rows]
            if not items:  # only an empty page can be an unknown store's
                await require_store(conn, store)
        return page(items, limit, lambda item: item.sku, headers)

    @get(
        "/stores/{store:str}/stock/{sku:str}",
        summary="One item's level, now or in the past",
        **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND),
    )
    async def get_stock(
        self,
        *,
        state: State,
        store: str,
        sku: str,
        as_of: datetime | None = None,
        known_at: datetime | None = None,
        min_position: MinPosition = None,
    ) -> Response[StockLevel]:
        """The current level; with `as_of` (business time) and/or `known_at` (recorded
        time), the level from the ledger as it stood, or was believed to stand, then."""
        check_times(as_of=as_of, known_at=known_at)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            row = await levels.item_level(conn, store, sku)
            if row is None:  # a level row proves both the store and the product exist
                await require_store(conn, store)
            decimals = int(row[3]) if row else await decimals_of(conn, sku)
            current = level(row) if row else None
            if as_of is None and known_at is None and current is not None:
                return Response(current, headers=headers)
            past = await level_at(conn, store, sku, as_of or FAR_FUTURE, known_at or FAR_FUTURE)
        return Response(past_level(store, sku, decimals, past, current), headers=headers)

    @get(
        "/stores/{store:str}/stock/{sku:str}/ledger",
        summary="One item's stock movements",
        **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND),
    )
    async def ledger(
        self,
        *,
        state: State,
        store: str,
        sku: str,
        from_: Annotated[datetime | None, Parameter(query="from")] = None,
        to: datetime | None = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[LedgerEntry]]:
        """Every stock event in recorded (`seq`) order, `from` <= occurred_at < `to`."""
        check_times(**{"from": from_, "to": to})
        after = decode_int_cursor(cursor)
        start = from_ or datetime.min.replace(tzinfo=UTC)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            await require_store(conn, store)
            decimals = await decimals_of(conn, sku)
            rows = await ledger_page(
                conn, store, sku, after, start=start, end=to or FAR_FUTURE, limit=limit
            )
        items = [ledger_entry(row, decimals) for row in rows]
        return page(items, limit, lambda item: item.seq, headers)

    @get(
        "/stock/{sku:str}",
        summary="One SKU in every store in scope",
        **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND),
    )
    async def stock_everywhere(
        self,
        *,
        request: ApiRequest,
        state: State,
        sku: str,
        store: StoreList = None,
        cursor: Cursor = None,
        limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[StockLevel]]:
        """The SKU's level in each store the caller may see (or of `store`), by store id."""
        chosen = [part for part in store.split(",") if part] if store else None
        after, stores = decode_cursor(cursor), request.user.scoped(chosen)
        async with reads.reading(state.resources.replica, min_position) as (conn, headers):
            await decimals_of(conn, sku)
            rows = await levels.sku_levels(conn, sku, after, stores, limit)
            items = [level(row) for row in rows]
        return page(items, limit, lambda item: item.store, headers)

    @get(
        "/search",
        summary="Search products with their levels",
        **protect(RouteClass.QUERY, store="store"),
    )
    async def search(
        self,
        *,
        request: ApiRequest,
        state: State,
        q: Annotated[str, Parameter(min_length=1, max_length=200)],
        store: str | None = None,
        limit: Limit = 20,
        min_position: MinPosition = None,
    ) -> Response[Page[SearchHit]]:
        """Products whose SKU, name or barcode contains `q` (trigram index), best first."""
        stores = request.user.scoped([store] if store else None)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            rows = await search_products(conn, q, stores, limit)
        return Response(Page(search_hits(rows), None), headers=headers)
