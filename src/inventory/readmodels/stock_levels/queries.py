"""Every read of `stock_levels`: a store's levels, one item's, a SKU's everywhere, and the
stock and low-stock reports.

The level pages return their rows as tuples in LEVEL_COLUMNS order, as psycopg reads
them: the API makes each its wire Struct once (api/query_views.py `level`, which shows
quantities per the product's decimals); a Struct in between would cost every row twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from psycopg import sql

from inventory.readmodels.quantities import quantity
from inventory.readmodels.rows import Conn, Row, fetch, like_prefix

# A level with its product's name and decimals (3 for a SKU the catalog lacks).
LEVEL_COLUMNS = """l.store, l.sku, p.name, coalesce(p.decimals, 3), l.on_hand, l.reserved,
    l.available, l.in_transit_in, l.in_transit_out, l.reorder_min, l.reorder_max, l.version,
    l.updated_at"""

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


async def store_levels(
    conn: Conn, store: str, after: str, *, sku_prefix: str | None, below: bool | None, limit: int
) -> list[Row]:
    """A store's levels by SKU after `after`; `sku_prefix` filters by prefix, `below` by
    the reorder point (None: either)."""
    params = {
        "store": store,
        "after": after,
        "prefix": like_prefix(sku_prefix),
        "below": below,
        "limit": limit,
    }
    return await fetch(conn, STOCK_LIST, params)


async def item_level(conn: Conn, store: str, sku: str) -> Row | None:
    """One item's level, or None."""
    rows = await fetch(conn, STOCK_ONE, (store, sku))
    return rows[0] if rows else None


async def sku_levels(
    conn: Conn, sku: str, after: str, stores: list[str] | None, limit: int
) -> list[Row]:
    """The SKU's level in each store (of `stores`; None: every one) after `after`."""
    params = {"sku": sku, "after": after, "stores": stores, "limit": limit}
    return await fetch(conn, STOCK_EVERYWHERE, params)


REPORT_COLUMNS = (
    "store",
    "sku",
    "on_hand",
    "reserved",
    "available",
    "in_transit_in",
    "in_transit_out",
    "reorder_min",
    "reorder_max",
    "version",
    "updated_at",
)


def levels_sql(
    stores: list[str] | None,
    *,
    low_only: bool,
    after: tuple[str, str] | None,
    limit: int | None,
) -> sql.Composed:
    """Stock levels (from the read model `stock_levels`), by store and SKU; `low_only`
    keeps the items whose `available` is below their reorder point."""
    where: list[sql.Composable] = [sql.SQL("true")]
    if stores is not None:
        where.append(sql.SQL("store = ANY({})").format(sql.Literal(stores)))
    if low_only:
        where.append(sql.SQL("reorder_min IS NOT NULL AND available < reorder_min"))
    if after is not None:
        where.append(sql.SQL("(store, sku) > ({}, {})").format(*map(sql.Literal, after)))
    tail = sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit else sql.SQL("")
    return sql.SQL("SELECT {} FROM stock_levels WHERE {} ORDER BY store, sku{}").format(
        sql.SQL(", ").join(map(sql.Identifier, REPORT_COLUMNS)), sql.SQL(" AND ").join(where), tail
    )


def level_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stock level as JSON-ready values."""
    values = dict(zip(REPORT_COLUMNS, row, strict=True))
    for name, value in values.items():
        if isinstance(value, Decimal):
            values[name] = quantity(value)
    values["updated_at"] = values["updated_at"].isoformat()
    return values


async def low_stock(
    conn: Conn, stores: list[str] | None, after: tuple[str, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The levels below their reorder point after (store, sku) `after`, as JSON-ready
    values (dicts: the report's rows, shared with the worker's stock report)."""
    rows = await fetch(conn, levels_sql(stores, low_only=True, after=after, limit=limit))
    return [level_row(row) for row in rows]
