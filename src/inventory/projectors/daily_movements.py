"""`daily_movements`: per store, SKU, UTC day and stock event type, a count and a quantity.

Days are UTC calendar days of `occurred_at`, not the store's local days: one report across
stores then adds up the same 24 hours everywhere, and a store's time zone may change
without rewriting history. The table says so in projections/0011_daily_movements.sql.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date
from decimal import Decimal

from inventory.domain.stock_events import (
    STOCK_EVENTS,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockReorderPointSet,
)
from inventory.eventstore.codec import Codec, tag_of
from inventory.projectors.engine import Builder, Cursor, Projector, ReplicaEvent, shadow

CODEC = Codec(STOCK_EVENTS)
MOVEMENT_TYPES = frozenset(tag_of(t) for t in STOCK_EVENTS) - {tag_of(StockReorderPointSet)}

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


def totals(events: Sequence[ReplicaEvent]) -> dict[Key, tuple[int, Decimal]]:
    """A batch folded into (count, quantity) per store, UTC day, SKU and type."""
    folded: dict[Key, tuple[int, Decimal]] = {}
    for replica_event in events:
        if replica_event.type not in MOVEMENT_TYPES:
            continue
        event = CODEC.decode(replica_event.type, replica_event.data)
        add(folded, replica_event, event)  # type: ignore[arg-type] # only stock events here
    return folded


def add(
    folded: dict[Key, tuple[int, Decimal]], replica_event: ReplicaEvent, event: StockEvent
) -> None:
    """Count a movement event into its day's total (events that move nothing are skipped)."""
    quantity = moved(event)
    if quantity is None or replica_event.store is None or replica_event.sku is None:
        return
    day = replica_event.occurred_at.astimezone(UTC).date()
    key = (replica_event.store, day, replica_event.sku, replica_event.type)
    count, total = folded.get(key, NONE_YET)
    folded[key] = (count + 1, total + quantity)


class DailyMovements(Projector):
    """A batch becomes one additive upsert of its totals."""

    name = "daily_movements"
    tables = ("daily_movements",)

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Fold the batch in Python, then add it to the table in one statement."""
        folded = totals(events)
        if not folded:
            return
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

    prefixes: tuple[str, ...] = ("stock.",)

    def __init__(self) -> None:
        self.folded: dict[Key, tuple[int, Decimal]] = {}

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Add a movement event to its day's total."""
        if event.type in MOVEMENT_TYPES and isinstance(decoded, STOCK_EVENTS):
            add(self.folded, event, decoded)  # type: ignore[arg-type] # a stock event

    def flush(self, cur: Cursor) -> None:
        """Nothing is final before the last event."""

    def finish(self, cur: Cursor) -> None:
        """One COPY of every total."""
        columns = "store, day, sku, type, count, quantity"
        with cur.copy(f"COPY {shadow('daily_movements')} ({columns}) FROM STDIN") as copy:
            for key, (count, quantity) in self.folded.items():
                copy.write_row((*key, count, quantity))
