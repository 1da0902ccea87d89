"""Stock queries on the replica (api.md "Queries"): levels, as_of/known_at, ledger, search,
alerts. Every handler waits for `min_position` and answers with `X-Read-Position`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import psycopg
from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from psycopg.rows import tuple_row

from inventory.api import reads
from inventory.api.errors import ApiError, Problem
from inventory.api.query_views import (
    LEVEL_COLUMNS,
    Alert,
    LedgerEntry,
    SearchHit,
    StockLevel,
    decode_cursor,
    decode_int_cursor,
    encode_cursor,
    ledger_entry,
    level,
    like_prefix,
)
from inventory.api.schemas import Page
from inventory.domain.window import representable_problem
from inventory.projectors.bitemporal import PastLevel, level_at
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

STOCK_LIST = f"""
SELECT {LEVEL_COLUMNS} FROM stock_levels AS l LEFT JOIN products AS p USING (sku)
WHERE l.store = %(store)s AND l.sku > %(after)s AND l.sku LIKE %(prefix)s
  AND (%(below)s::boolean IS NULL
       OR %(below)s = coalesce(l.available < l.reorder_min, false))
ORDER BY l.sku LIMIT %(limit)s
"""
STOCK_ONE = f"""
SELECT {LEVEL_COLUMNS} FROM stock_levels AS l LEFT JOIN products AS p USING (sku)
WHERE l.store = %s AND l.sku = %s
"""
STOCK_EVERYWHERE = f"""
SELECT {LEVEL_COLUMNS} FROM stock_levels AS l LEFT JOIN products AS p USING (sku)
WHERE l.sku = %(sku)s AND l.store > %(after)s
  AND (%(stores)s::text[] IS NULL OR l.store = ANY(%(stores)s))
ORDER BY l.store LIMIT %(limit)s
"""
LEDGER = """
SELECT seq, position, type, occurred_at, recorded_at, delta, on_hand_after, reason,
       reference, actor, absorbed
FROM stock_ledger
WHERE store = %(store)s AND sku = %(sku)s AND seq > %(after)s
  AND occurred_at >= %(from)s AND occurred_at < %(to)s
ORDER BY seq LIMIT %(limit)s
"""
# Products whose `search` contains the lowered `q` or whose barcode is `q`: the exact
# SKU first, then by similarity, then by SKU. The final ORDER BY ranks a superset of
# the answer: the exact SKU, the exact barcodes, and the nearest `limit` LIKE matches
# by trigram distance (`<->` is 1 - similarity, so nearest is most similar) with every
# row tied with the last, so ties on similarity still break by SKU. The distance names
# `search || ''` to use the GiST index of projections/0025 (a nearest-neighbour scan:
# a word every product contains no longer scores every row), while selective words keep
# the GIN index for the LIKE and sort their few matches.
SEARCH = """
SELECT sku, name, barcode, unit, decimals, row_number() OVER (
    ORDER BY sku = %(q)s DESC, similarity(search, %(lower)s) DESC, sku) AS rank
FROM (
    SELECT sku, name, barcode, unit, decimals, search FROM products
    WHERE sku = %(q)s AND (search LIKE %(pattern)s OR barcode = %(q)s)
    UNION
    (SELECT sku, name, barcode, unit, decimals, search FROM products
     WHERE search LIKE %(pattern)s
     ORDER BY (search || '') <-> %(lower)s FETCH FIRST %(limit)s ROWS WITH TIES)
    UNION
    SELECT sku, name, barcode, unit, decimals, search FROM products WHERE barcode = %(q)s
) AS found
ORDER BY rank LIMIT %(limit)s
"""
# The hits and their levels in the stores in scope in one statement (one round trip, one
# snapshot): a hit's rows are together, in rank then store order; a hit without any
# level has one row whose level columns are null. The lateral subquery's ORDER BY keeps
# it a per-hit range of stock_levels_sku_store (without it the planner may hash-join a
# sequential scan of every level to the 20 hits).
SEARCH_WITH_LEVELS = f"""
WITH p AS MATERIALIZED ({SEARCH})
SELECT p.sku, p.name, p.barcode, p.unit, p.decimals, {LEVEL_COLUMNS}
FROM p LEFT JOIN LATERAL (
    SELECT * FROM stock_levels
    WHERE sku = p.sku AND (%(stores)s::text[] IS NULL OR store = ANY(%(stores)s))
    ORDER BY store
) AS l ON true
ORDER BY p.rank, l.store
"""
ALERTS = """
SELECT id, store, sku, kind, opened_seq, opened_at, details FROM alerts
WHERE closed_seq IS NULL AND id > %(after)s
  AND (%(stores)s::text[] IS NULL OR store = ANY(%(stores)s))
  AND (%(kind)s::text IS NULL OR kind = %(kind)s)
ORDER BY id LIMIT %(limit)s
"""
AlertKind = Literal["low_stock", "negative_stock", "count_discrepancy"]


async def fetch(
    conn: Conn, query: str, params: Any, *, prepare: bool | None = None
) -> list[tuple[Any, ...]]:
    """Every row of `query` (`prepare` as psycopg's: None prepares it once used often)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params, prepare=prepare)
    return await cur.fetchall()


async def decimals_of(conn: Conn, sku: str) -> int:
    """The product's `decimals`; 404 `product_not_found` when the catalog lacks it."""
    rows = await fetch(conn, "SELECT decimals FROM products WHERE sku = %s", (sku,))
    if not rows:
        raise ApiError(404, "product_not_found", f"No product has the SKU {sku!r}.")
    return int(rows[0][0])


async def require_store(conn: Conn, store: str) -> None:
    """404 `store_not_found` unless the store exists on the read side."""
    if not await fetch(conn, "SELECT 1 FROM stores WHERE id = %s", (store,)):
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
        store=store, sku=sku, name=current.name if current else None,
        on_hand=show_quantity(past.on_hand, decimals),
        reserved=show_quantity(past.reserved, decimals),
        available=show_quantity(past.available, decimals),
        in_transit_in=show_quantity(past.in_transit_in, decimals),
        in_transit_out=show_quantity(past.in_transit_out, decimals),
        reorder_min=current.reorder_min if current else None,
        reorder_max=current.reorder_max if current else None,
        version=past.version, updated_at=None,
    )  # fmt: skip


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

    @get("/stores/{store:str}/stock", summary="A store's stock levels",
         **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND))  # fmt: skip
    async def list_stock(
        self, *, state: State, store: str, sku: str | None = None,
        below_reorder: bool | None = None, cursor: Cursor = None, limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[StockLevel]]:  # fmt: skip
        """Levels by SKU; `sku` filters by prefix, `below_reorder` by the reorder point."""
        params = {"store": store, "after": decode_cursor(cursor), "prefix": like_prefix(sku),
                  "below": below_reorder, "limit": limit}  # fmt: skip
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            items = [level(row) for row in await fetch(conn, STOCK_LIST, params)]
            if not items:  # only an empty page can be an unknown store's
                await require_store(conn, store)
        return page(items, limit, lambda item: item.sku, headers)

    @get("/stores/{store:str}/stock/{sku:str}", summary="One item's level, now or in the past",
         **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND))  # fmt: skip
    async def get_stock(
        self, *, state: State, store: str, sku: str, as_of: datetime | None = None,
        known_at: datetime | None = None, min_position: MinPosition = None,
    ) -> Response[StockLevel]:  # fmt: skip
        """The current level; with `as_of` (business time) and/or `known_at` (recorded
        time), the level from the ledger as it stood, or was believed to stand, then."""
        check_times(as_of=as_of, known_at=known_at)
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            rows = await fetch(conn, STOCK_ONE, (store, sku))
            if not rows:  # a level row proves both the store and the product exist
                await require_store(conn, store)
            decimals = int(rows[0][3]) if rows else await decimals_of(conn, sku)
            current = level(rows[0]) if rows else None
            if as_of is None and known_at is None and current is not None:
                return Response(current, headers=headers)
            past = await level_at(conn, store, sku, as_of or FAR_FUTURE, known_at or FAR_FUTURE)
        return Response(past_level(store, sku, decimals, past, current), headers=headers)

    @get("/stores/{store:str}/stock/{sku:str}/ledger", summary="One item's stock movements",
         **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND))  # fmt: skip
    async def ledger(
        self, *, state: State, store: str, sku: str,
        from_: Annotated[datetime | None, Parameter(query="from")] = None,
        to: datetime | None = None, cursor: Cursor = None, limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[LedgerEntry]]:  # fmt: skip
        """Every stock event in recorded (`seq`) order, `from` <= occurred_at < `to`."""
        check_times(**{"from": from_, "to": to})
        params = {"store": store, "sku": sku, "after": decode_int_cursor(cursor),
                  "from": from_ or datetime.min.replace(tzinfo=UTC), "to": to or FAR_FUTURE,
                  "limit": limit}  # fmt: skip
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            await require_store(conn, store)
            decimals = await decimals_of(conn, sku)
            rows = await fetch(conn, LEDGER, params)
        items = [ledger_entry(row, decimals) for row in rows]
        return page(items, limit, lambda item: item.seq, headers)

    @get("/stock/{sku:str}", summary="One SKU in every store in scope",
         **protect(RouteClass.QUERY, store="store", responses=NOT_FOUND))  # fmt: skip
    async def stock_everywhere(
        self, *, request: ApiRequest, state: State, sku: str, store: StoreList = None,
        cursor: Cursor = None, limit: Limit = 100, min_position: MinPosition = None,
    ) -> Response[Page[StockLevel]]:  # fmt: skip
        """The SKU's level in each store the caller may see (or of `store`), by store id."""
        chosen = [part for part in store.split(",") if part] if store else None
        params = {"sku": sku, "after": decode_cursor(cursor),
                  "stores": request.user.scoped(chosen), "limit": limit}  # fmt: skip
        async with reads.reading(state.resources.replica, min_position) as (conn, headers):
            await decimals_of(conn, sku)
            items = [level(row) for row in await fetch(conn, STOCK_EVERYWHERE, params)]
        return page(items, limit, lambda item: item.store, headers)

    @get("/search", summary="Search products with their levels",
         **protect(RouteClass.QUERY, store="store"))  # fmt: skip
    async def search(
        self, *, request: ApiRequest, state: State,
        q: Annotated[str, Parameter(min_length=1, max_length=200)],
        store: str | None = None, limit: Limit = 20, min_position: MinPosition = None,
    ) -> Response[Page[SearchHit]]:  # fmt: skip
        """Products whose SKU, name or barcode contains `q` (trigram index), best first."""
        stores = request.user.scoped([store] if store else None)
        lower = q.lower()
        pattern = "%" + like_prefix(lower)
        params = {"pattern": pattern, "q": q, "lower": lower, "limit": limit, "stores": stores}
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            # Never prepared: planned for each word (a generic plan would scan the same
            # index for a word every product contains and for a selective one).
            rows = await fetch(conn, SEARCH_WITH_LEVELS, params, prepare=False)
        hits: list[SearchHit] = []
        for row in rows:
            if not hits or hits[-1].sku != row[0]:
                hits.append(SearchHit(sku=row[0], name=row[1], barcode=row[2], unit=row[3],
                                      decimals=row[4], levels=[]))  # fmt: skip
            if row[5] is not None:  # the level's store: null for a hit without levels
                hits[-1].levels.append(level(row[5:]))
        return Response(Page(hits, None), headers=headers)

    @get("/alerts", summary="Open alerts", **protect(RouteClass.QUERY, store="store"))
    async def alerts(
        self, *, request: ApiRequest, state: State, store: str | None = None,
        kind: AlertKind | None = None, cursor: Cursor = None, limit: Limit = 100,
        min_position: MinPosition = None,
    ) -> Response[Page[Alert]]:  # fmt: skip
        """Open low-stock, negative-stock and count-discrepancy alerts in scope."""
        params = {"after": decode_int_cursor(cursor), "kind": kind, "limit": limit,
                  "stores": request.user.scoped([store] if store else None)}  # fmt: skip
        async with reads.reading(state.resources.replica, min_position, store) as (conn, headers):
            rows = await fetch(conn, ALERTS, params)
        items = [Alert(id=r[0], store=r[1], sku=r[2], kind=r[3], opened_seq=r[4],
                       opened_at=r[5], details=r[6]) for r in rows]  # fmt: skip
        return page(items, limit, lambda item: item.id, headers)
