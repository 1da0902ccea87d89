"""`daily_movements`: per store, SKU, local day and stock event type, a count and a quantity.

A day is the store's business day: the calendar day of `occurred_at` in the store's time
zone (`timezone` of `store.opened`, or of a later `store.updated`), as POS systems date a
transaction. The zone in force is the one the store had when the event was recorded, so a
later change of zone dates only the movements recorded after it and never moves a day's
totals (a rebuild, reading in the same order, dates every event the same way). The
projector keeps each store's zone in `daily_movement_zones`: a store's events and its
stock events share one partition, so the zone is always folded before the movements it
dates.

Tables: projections/0011_daily_movements.sql, 0035_daily_movement_zones.sql. The movement
report's query (`MovementQuery`) is below: the API streams it, the worker keeps its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from psycopg import sql

from inventory.domain.events import StoreOpened, StoreUpdated
from inventory.domain.stock_events import (
    STOCK_EVENTS,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockReorderPointSet,
)
from inventory.domain.window import local_date
from inventory.domain.zones import zone
from inventory.eventstore.codec import Codec, tag_of
from inventory.readmodels.projection import Builder, Cursor, Projector, ReplicaEvent, shadow
from inventory.readmodels.quantities import quantity

CODEC = Codec((*STOCK_EVENTS, StoreOpened, StoreUpdated))
MOVEMENT_TYPES = frozenset(tag_of(t) for t in STOCK_EVENTS) - {tag_of(StockReorderPointSet)}
OPENED = tag_of(StoreOpened)
ZONE_TYPES = frozenset({OPENED, tag_of(StoreUpdated)})

# Additive: exact because the engine commits this and the checkpoint in one transaction.
UPSERT = """
INSERT INTO daily_movements AS m (store, day, sku, type, count, quantity)
SELECT * FROM unnest(%s::text[], %s::date[], %s::text[], %s::text[], %s::bigint[],
                     %s::numeric[])
ON CONFLICT (store, day, sku, type) DO UPDATE SET
    count = m.count + excluded.count,
    quantity = m.quantity + excluded.quantity,
    updated_at = now()
"""
ZONES = "SELECT store, timezone FROM daily_movement_zones WHERE store = ANY(%s)"
SET_ZONES = """
INSERT INTO daily_movement_zones AS z (store, timezone)
SELECT * FROM unnest(%s::text[], %s::text[])
ON CONFLICT (store) DO UPDATE SET timezone = excluded.timezone
"""

Key = tuple[str, date, str, str]
NONE_YET = (0, Decimal(0))  # a day's total before its first event


def moved(event: StockEvent) -> Decimal | None:
    """The quantity an event adds to its day's total; None for events that move nothing."""
    if isinstance(event, StockReorderPointSet):
        return None
    if isinstance(event, StockAdjusted):
        return event.delta
    if isinstance(event, StockCounted):
        return event.counted
    return event.quantity


class Totals:
    """Movements folded into (count, quantity) per store, local day, SKU and type, with
    the stores' zones as the events set them."""

    def __init__(self, zones: dict[str, str]) -> None:
        self.zones = zones  # store: its time zone's name
        self.folded: dict[Key, tuple[int, Decimal]] = {}

    def feed(self, replica_event: ReplicaEvent, event: object) -> None:
        """Fold one decoded event: a store's zone, or a movement into its day's total."""
        if isinstance(event, StoreOpened | StoreUpdated):
            if event.timezone is not None:
                self.zones[event.store_id] = event.timezone
            return
        quantity = moved(event) if isinstance(event, STOCK_EVENTS) else None  # type: ignore[arg-type]
        store, sku = replica_event.store, replica_event.sku
        if quantity is None or store is None or sku is None:
            return
        day = local_date(replica_event.occurred_at, zone(self.zones.get(store)))
        key = (store, day, sku, replica_event.type)
        count, total = self.folded.get(key, NONE_YET)
        self.folded[key] = (count + 1, total + quantity)


def zones_needed(events: Sequence[ReplicaEvent]) -> list[str]:
    """The stores whose zone a batch needs: those it does not open itself (a
    `store.opened` always names a zone; a `store.updated` may not)."""
    needed: dict[str, None] = {}
    opened_here: set[str] = set()
    for event in events:
        if event.store is None:
            continue
        if event.type == OPENED:
            opened_here.add(event.store)
        elif event.type in MOVEMENT_TYPES and event.store not in opened_here:
            needed[event.store] = None
    return list(needed)


class DailyMovements(Projector):
    """A batch becomes one additive upsert of its totals."""

    name = "daily_movements"
    tables = ("daily_movements", "daily_movement_zones")

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Fold the batch in Python with the stores' zones, then add it in one statement."""
        relevant = [e for e in events if e.type in MOVEMENT_TYPES or e.type in ZONE_TYPES]
        if not relevant:
            return
        zones: dict[str, str] = {}
        if needed := zones_needed(relevant):
            cur.execute(ZONES, (needed,))
            zones.update(cur.fetchall())
        before = dict(zones)
        totals = Totals(zones)
        for event in relevant:
            totals.feed(event, CODEC.decode(event.type, event.data))
        if changed := {s: name for s, name in zones.items() if before.get(s) != name}:
            cur.execute(SET_ZONES, (list(changed), list(changed.values())))
        if folded := totals.folded:
            keys = list(folded)
            cur.execute(
                UPSERT,
                (
                    [k[0] for k in keys],
                    [k[1] for k in keys],
                    [k[2] for k in keys],
                    [k[3] for k in keys],
                    [folded[k][0] for k in keys],
                    [folded[k][1] for k in keys],
                ),
            )

    def builder(self) -> Builder:
        """The whole history's totals in memory, COPYed at the end."""
        return MovementsBuilder()


class MovementsBuilder:
    """Totals over every event: the same sums the additive upserts reach batch by batch."""

    prefixes: tuple[str, ...] = ("stock.", "store.")
    decodes = MOVEMENT_TYPES | ZONE_TYPES  # what `apply` decodes (a rebuild stops on those)

    def __init__(self) -> None:
        self.totals = Totals({})

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Add a movement event to its day's total, or note a store's zone."""
        if event.type in MOVEMENT_TYPES or event.type in ZONE_TYPES:
            self.totals.feed(event, decoded)

    def flush(self, cur: Cursor) -> None:
        """Nothing is final before the last event."""

    def finish(self, cur: Cursor) -> None:
        """One COPY of every total, one of the stores' zones."""
        columns = "store, day, sku, type, count, quantity"
        with cur.copy(f"COPY {shadow('daily_movements')} ({columns}) FROM STDIN") as copy:
            for key, (count, quantity) in self.totals.folded.items():
                copy.write_row((*key, count, quantity))
        with cur.copy(
            f"COPY {shadow('daily_movement_zones')} (store, timezone) FROM STDIN"
        ) as copy:
            for store, name in self.totals.zones.items():
                copy.write_row((store, name))


# The movement report: totals over days, per store, SKU and type.

MOVEMENT_COLUMNS = ("store", "sku", "type", "count", "quantity")


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
    return {
        "store": store,
        "sku": sku,
        "type": event_type,
        "count": count,
        "quantity": quantity(total),
    }
