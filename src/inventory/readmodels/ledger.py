"""`stock_ledger`: one row per stock event, with the quantities after it.

Table: projections/0007_stock_ledger.sql. The stock projector (stock_levels/projector.py)
writes it in its fold; `ledger_page` is the API's read (the level as of a time is
bitemporal.py's, the feed's levels feed_publication.py's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from inventory.domain.events import StockAdjusted, StockCounted, StockEvent, StockReceived
from inventory.domain.evolution import evolve
from inventory.domain.state import ZERO, StockState, level_of
from inventory.readmodels.projection import Cursor, ReplicaEvent
from inventory.readmodels.rows import Conn, Row, fetch

COLUMNS = (
    "seq, position, store, sku, version, type, occurred_at, recorded_at, delta, counted,"
    " reserved_delta, in_transit_in_delta, in_transit_out_delta, on_hand_after,"
    " reserved_after, available_after, in_transit_in_after, in_transit_out_after,"
    " reason, reference, actor, absorbed"
)

TYPES = (
    ["bigint", "bigint", "text", "text", "bigint", "text", "timestamptz", "timestamptz"]
    + ["numeric"] * 10
    + ["text", "text", "text", "boolean"]
)


# An empty state whose movements all fall in its settled stretch: `evolve` adds their
# deltas to the quantities as on StockState(), without itemising them (which only
# concerns `after_count`, never read here), at about half the cost per ledger row.
# (A naive time, which the settled stretch's end cannot be compared with, starts from
# StockState() itself.)
STATED_FROM = StockState(settled_through=datetime.max.replace(tzinfo=UTC))
EMPTY = StockState()


def stated(event: StockEvent) -> StockState:
    """What the event alone does, folded onto an empty state (no count anchor): its
    stated deltas, by the domain's own `evolve`."""
    return evolve(STATED_FROM if event.occurred_at.tzinfo is not None else EMPTY, event)


def reference_of(event: StockEvent) -> str | None:
    """The document the event belongs to: delivery reference, sale, reservation, transfer."""
    if isinstance(event, StockReceived):
        return event.reference
    for field in ("sale_id", "reservation_id", "transfer_id"):
        value = getattr(event, field, None)
        if isinstance(value, str):
            return value
    return None


def ledger_row(
    replica: ReplicaEvent,
    event: StockEvent,
    before: StockState,
    after: StockState,
    *,
    absorbed: bool,
    actor: str | None,
) -> tuple[Any, ...]:
    """The row, in COLUMNS order."""
    level = level_of(after)
    return (
        replica.seq,
        replica.position,
        event.store_id,
        event.sku,
        replica.version,
        replica.type,
        event.occurred_at,
        replica.recorded_at,
        *_deltas(event, before, after),
        level.on_hand,
        level.reserved,
        level.available,
        level.in_transit_in,
        level.in_transit_out,
        event.reason if isinstance(event, StockAdjusted) else None,
        reference_of(event),
        actor,
        absorbed,
    )


def _deltas(event: StockEvent, before: StockState, after: StockState) -> tuple[Any, ...]:
    """delta, counted, and the reserved and in-transit deltas."""
    if isinstance(event, StockCounted):
        return (after.on_hand - before.on_hand, event.counted, ZERO, ZERO, ZERO)
    alone = stated(event)
    return (alone.on_hand, None, alone.reserved, alone.in_transit_in, alone.in_transit_out)


_rfc3339 = msgspec.json.Encoder()


def copy_time(value: datetime) -> datetime | str:
    """A timestamp for a text COPY: msgspec's RFC 3339 (about a fifth of the cost of
    psycopg's text dumper; the same instant, and a naive time is read in the session's
    time zone either way). An offset with seconds (msgspec would drop them) stays a
    datetime, for psycopg to write."""
    offset = value.utcoffset()
    if offset is not None and offset.seconds % 60:
        return value
    return _rfc3339.encode(value)[1:-1].decode()


def write_ledger(
    cur: Cursor,
    rows: Sequence[tuple[Any, ...]],
    table: str = "stock_ledger",
    *,
    binary: bool = True,
) -> None:
    """COPY the rows in: one round trip for the whole batch. The text format, with the
    timestamps written by `copy_time`, costs this process about half as much per row (a
    rebuild's millions); the same values either way."""
    if not rows:
        return
    options = " (FORMAT BINARY)" if binary else ""
    with cur.copy(f"COPY {table} ({COLUMNS}) FROM STDIN{options}") as copy:
        if binary:
            copy.set_types(TYPES)
            for row in rows:
                copy.write_row(row)
            return
        for row in rows:  # occurred_at and recorded_at are the 7th and 8th columns
            copy.write_row((*row[:6], copy_time(row[6]), copy_time(row[7]), *row[8:]))


# The actor's name is read from the event's metadata at query time (who acted, as they
# were named then): the ledger rows keep the id alone, and a rebuild writes them as is.
LEDGER = """
SELECT l.seq, l.position, l.type, l.occurred_at, l.recorded_at, l.delta, l.on_hand_after,
       l.reason, l.reference, l.actor, l.absorbed, e.metadata->'actor'->>'name'
FROM stock_ledger AS l LEFT JOIN events AS e ON e.position = l.position
WHERE l.store = %(store)s AND l.sku = %(sku)s AND l.seq > %(after)s
  AND l.occurred_at >= %(from)s AND l.occurred_at < %(to)s
ORDER BY l.seq LIMIT %(limit)s
"""


async def ledger_page(
    conn: Conn, store: str, sku: str, after: int, *, start: datetime, end: datetime, limit: int
) -> list[Row]:
    """The item's ledger rows after seq `after` with `start` <= occurred_at < `end`, in seq
    order, each with its actor's name: tuples in LEDGER's column order (the API shows each
    row's quantities per the product's decimals as it makes its wire Struct)."""
    params: dict[str, Any] = {
        "store": store,
        "sku": sku,
        "after": after,
        "from": start,
        "to": end,
        "limit": limit,
    }
    return await fetch(conn, LEDGER, params)
