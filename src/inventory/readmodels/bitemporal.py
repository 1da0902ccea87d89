"""Stock `as_of` a business time and `known_at` a recorded time, by aggregation over
`stock_ledger` (product.md §4): the latest count at or before T plus the deltas dated
after it up to T, over what was recorded by R. One indexed range scan, no replay.

Table: `stock_ledger` (projections/0007_stock_ledger.sql, written by ledger.py's rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

LEVEL_AT = """
WITH facts AS (
    SELECT type, occurred_at, seq, version, delta, counted, reserved_delta,
           in_transit_in_delta, in_transit_out_delta
    FROM stock_ledger
    WHERE store = %(store)s AND sku = %(sku)s
      AND occurred_at <= %(as_of)s AND recorded_at <= %(known_at)s
), anchor AS (
    SELECT occurred_at, counted FROM facts WHERE type = 'stock.counted'
    ORDER BY occurred_at DESC, seq DESC LIMIT 1
)
SELECT coalesce((SELECT counted FROM anchor), 0) + coalesce(sum(delta) FILTER (
           WHERE type <> 'stock.counted'
             AND occurred_at > coalesce((SELECT occurred_at FROM anchor), '-infinity')), 0),
       coalesce(sum(reserved_delta), 0),
       coalesce(sum(in_transit_in_delta), 0),
       coalesce(sum(in_transit_out_delta), 0),
       coalesce(max(version), 0),
       max(seq)
FROM facts
"""


@dataclass(frozen=True)
class PastLevel:
    """An item's quantities as they stood (or were believed to stand) at a moment."""

    on_hand: Decimal
    reserved: Decimal
    in_transit_in: Decimal
    in_transit_out: Decimal
    version: int
    last_seq: int | None

    @property
    def available(self) -> Decimal:
        """`on_hand - reserved`."""
        return self.on_hand - self.reserved


async def level_at(
    conn: psycopg.AsyncConnection[Any],
    store: str,
    sku: str,
    as_of: datetime,
    known_at: datetime,
) -> PastLevel:
    """The level from the ledger rows dated by `as_of` and recorded by `known_at`."""
    params = {"store": store, "sku": sku, "as_of": as_of, "known_at": known_at}
    cursor = await conn.execute(LEVEL_AT, params)
    row = await cursor.fetchone()
    assert row is not None
    return PastLevel(*row)
