"""Report queries on the replica: movement totals, low stock, stock, and report runs.

The API streams these (a year of a large store never sits in memory); the worker runs
the same queries for `POST /v1/reports` and keeps the rows in `report_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg import sql

MOVEMENT_COLUMNS = ("store", "sku", "type", "count", "quantity")
LEVEL_COLUMNS = (
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


def quantity(value: Decimal | None) -> int | str | None:
    """api.md quantities: an integer when whole, else an exact decimal string."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class MovementQuery:
    """Movement totals: `stores` None means every store; days are each store's local days,
    both inclusive."""

    stores: list[str] | None = None
    sku: str | None = None
    start: date | None = None
    end: date | None = None

    def sql(self) -> sql.Composed:
        """One row per store, SKU and type, summed over the days asked for."""
        where: list[sql.Composable] = [sql.SQL("true")]
        if self.stores is not None:
            where.append(sql.SQL("store = ANY({})").format(sql.Literal(self.stores)))
        if self.sku is not None:
            where.append(sql.SQL("sku = {}").format(sql.Literal(self.sku)))
        if self.start is not None:
            where.append(sql.SQL("day >= {}").format(sql.Literal(self.start)))
        if self.end is not None:
            where.append(sql.SQL("day <= {}").format(sql.Literal(self.end)))
        return sql.SQL(
            "SELECT store, sku, type, sum(count)::bigint, sum(quantity) FROM daily_movements"
            " WHERE {} GROUP BY store, sku, type ORDER BY store, sku, type"
        ).format(sql.SQL(" AND ").join(where))


def movement_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A movement row as JSON-ready values."""
    store, sku, event_type, count, total = row
    return {"store": store, "sku": sku, "type": event_type, "count": count,
            "quantity": quantity(total)}  # fmt: skip


def levels_sql(stores: list[str] | None, *, low_only: bool, after: tuple[str, str] | None,
               limit: int | None) -> sql.Composed:  # fmt: skip
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
        sql.SQL(", ").join(map(sql.Identifier, LEVEL_COLUMNS)), sql.SQL(" AND ").join(where), tail
    )


def level_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stock level as JSON-ready values."""
    values = dict(zip(LEVEL_COLUMNS, row, strict=True))
    for name, value in values.items():
        if isinstance(value, Decimal):
            values[name] = quantity(value)
    values["updated_at"] = values["updated_at"].isoformat()
    return values
