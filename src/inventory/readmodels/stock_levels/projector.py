"""`stock_levels`, with the ledger and alerts: one fold of each item's events per batch.

The three tables are one projector because they are three views of the same fold: each
ledger row needs the state before and after its event, and an alert the same. Folding
once keeps them at the same checkpoint (a query joining them never sees two moments).

Tables: projections/0006_stock_levels.sql, 0045_stock_levels_latest_at.sql (levels),
0007_stock_ledger.sql (ledger and alerts). Their queries: queries.py here, ledger.py,
bitemporal.py, alerts.py, search.py.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from inventory.domain.events import StockEvent, StockFact
from inventory.domain.evolution import evolve
from inventory.domain.state import StockState, level_of
from inventory.domain.stock_evolution import event_is_absorbed
from inventory.readmodels.alerts import AlertBook
from inventory.readmodels.decoding import actor_of, domain_event
from inventory.readmodels.ledger import copy_time, ledger_row, write_ledger
from inventory.readmodels.projection import Builder, Cursor, Projector, ReplicaEvent, shadow

Item = tuple[str, str]
LEVEL_COLUMNS = (
    "store, sku, on_hand, reserved, available, in_transit_in, in_transit_out, reorder_min,"
    " reorder_max, version, last_seq, updated_at, state"
)

# An item's state is sent only when its row's last_seq is not the one whose state this
# process holds (`known`, 0 for none): the state at a seq is the fold of the item's
# events up to it, whoever wrote it.
CURRENT = """
SELECT l.store, l.sku, l.last_seq,
       CASE WHEN l.last_seq = item.known THEN NULL ELSE l.state::text END
FROM stock_levels AS l
JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS item(store, sku, known) USING (store, sku)
"""
# Items whose state this process keeps between batches (least recently used dropped).
KEPT_STATES = 4096
# The rows travel as one JSON document: no per-value array escaping on our side, one
# parse in the server.
UPSERT = """
INSERT INTO stock_levels (store, sku, on_hand, reserved, available, in_transit_in,
    in_transit_out, reorder_min, reorder_max, version, last_seq, updated_at, state)
SELECT store, sku, on_hand, reserved, available, in_transit_in, in_transit_out, reorder_min,
    reorder_max, version, last_seq, updated_at, state
FROM jsonb_to_recordset(%s::jsonb) AS r(store text, sku text, on_hand numeric,
    reserved numeric, available numeric, in_transit_in numeric, in_transit_out numeric,
    reorder_min numeric, reorder_max numeric, version bigint, last_seq bigint,
    updated_at timestamptz, state jsonb)
ON CONFLICT (store, sku) DO UPDATE SET
    on_hand = excluded.on_hand, reserved = excluded.reserved, available = excluded.available,
    in_transit_in = excluded.in_transit_in, in_transit_out = excluded.in_transit_out,
    reorder_min = excluded.reorder_min, reorder_max = excluded.reorder_max,
    version = excluded.version, last_seq = excluded.last_seq,
    updated_at = excluded.updated_at, state = excluded.state
"""


class LevelRow(msgspec.Struct, frozen=True):
    """A stock_levels row as the upsert reads it."""

    store: str
    sku: str
    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    in_transit_in: Decimal
    in_transit_out: Decimal
    reorder_min: Decimal | None
    reorder_max: Decimal | None
    version: int
    last_seq: int
    updated_at: datetime
    state: msgspec.Raw


_decode_state = msgspec.json.Decoder(StockState)
_encode = msgspec.json.Encoder()


class Folded:
    """An item's state after the batch's events so far, and what last changed it."""

    __slots__ = ("event", "state")

    def __init__(self, state: StockState, event: ReplicaEvent | None = None) -> None:
        self.state, self.event = state, event


def stock_events(events: Sequence[ReplicaEvent]) -> list[tuple[ReplicaEvent, StockEvent]]:
    """The batch's stock events, decoded, in seq order."""
    found = []
    for replica in events:
        if not replica.type.startswith("stock."):
            continue
        event = domain_event(replica)
        if isinstance(event, StockFact):
            found.append((replica, event))
    return found


class States:
    """The states this process last read or wrote, by item, with the seq they are at: a
    batch reads an item's state from its row only when the row is at another seq (another
    worker wrote it, a rebuild, a reset), which spares decoding states of up to
    DETAIL_LIMIT movements (60 µs each) in every batch."""

    def __init__(self, size: int = KEPT_STATES) -> None:
        self.size = size
        self._states: OrderedDict[Item, tuple[int, StockState]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, items: list[Item]) -> dict[Item, tuple[int, StockState]]:
        """The kept states of these items."""
        with self._lock:
            found = {item: kept for item in items if (kept := self._states.get(item))}
            for item in found:
                self._states.move_to_end(item)
        return found

    def keep(self, states: dict[Item, tuple[int, StockState]]) -> None:
        """Keep these states (each at its seq), dropping the least recently used."""
        with self._lock:
            self._states.update(states)
            for item in states:
                self._states.move_to_end(item)
            while len(self._states) > self.size:
                self._states.popitem(last=False)


def load(cur: Cursor, items: list[Item], states: States | None = None) -> dict[Item, Folded]:
    """The items' current states, in one query; new items start empty."""
    kept = states.get(items) if states is not None else {}
    known = [kept[item][0] if item in kept else 0 for item in items]
    cur.execute(CURRENT, ([s for s, _ in items], [k for _, k in items], known))
    current = {
        (s, k): kept[(s, k)][1] if raw is None else _decode_state.decode(raw)
        for s, k, _, raw in cur.fetchall()
    }
    return {item: Folded(current.get(item, StockState())) for item in items}


def level_row(item: Item, folded: Folded) -> LevelRow:
    """The stock_levels row of an item the batch changed."""
    state, event = folded.state, folded.event
    assert event is not None
    level = level_of(state)
    return LevelRow(
        *item,
        level.on_hand,
        level.reserved,
        level.available,
        level.in_transit_in,
        level.in_transit_out,
        state.reorder_min,
        state.reorder_max,
        event.version,
        event.seq,
        event.recorded_at,
        msgspec.Raw(_encode.encode(state)),
    )


class StockLevels(Projector):
    """Levels, ledger and alerts of every item of a store, from its stock events."""

    name = "stock"
    tables = ("stock_levels", "stock_ledger", "alerts")

    def __init__(self) -> None:
        self.states = States()

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Read the batch's items once, fold in Python, write each table in one statement."""
        found = stock_events(events)
        if not found:
            return
        items = list(dict.fromkeys((event.store_id, event.sku) for _, event in found))
        folded = load(cur, items, self.states)
        alerts = AlertBook.load(cur, items)
        ledger: list[tuple[Any, ...]] = []
        for replica, event in found:
            fold(folded[(event.store_id, event.sku)], replica, event, ledger, alerts)
        rows = [level_row(item, folded[item]) for item in items]
        cur.execute(UPSERT, (_encode.encode(rows).decode(),))
        write_ledger(cur, ledger)
        alerts.write(cur)
        # Kept before the commit: if it fails, the rows stay at their older seqs, which
        # the next batch sees and reads.
        self.states.keep(
            {(r.store, r.sku): (r.last_seq, folded[(r.store, r.sku)].state) for r in rows}
        )

    def builder(self) -> Builder:
        """Every item's state in memory, the ledger COPYed chunk by chunk."""
        return StockBuilder()


def fold(
    current: Folded,
    replica: ReplicaEvent,
    event: StockEvent,
    ledger: list[tuple[Any, ...]],
    alerts: AlertBook,
) -> None:
    """Apply one event to its item: the ledger row, the alerts, the new state."""
    before = current.state
    absorbed = event_is_absorbed(before, event)
    after = evolve(before, event)
    actor = actor_of(replica)
    ledger.append(ledger_row(replica, event, before, after, absorbed=absorbed, actor=actor))
    alerts.observe(replica, event, before, after, absorbed=absorbed)
    current.state, current.event = after, replica


class StockBuilder:
    """The same fold over every event, starting from empty states and no open alert."""

    prefixes: tuple[str, ...] = ("stock.",)

    def __init__(self) -> None:
        self.folded: dict[Item, Folded] = {}
        self.alerts = AlertBook({})
        self.ledger: list[tuple[Any, ...]] = []

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Fold a stock event onto its item."""
        current = self.item_of(event, decoded)
        if current is not None:
            fold(current, event, decoded, self.ledger, self.alerts)  # type: ignore[arg-type]

    def item_of(self, event: ReplicaEvent, decoded: object) -> Folded | None:
        """The fold of the stock event's item (a new one for a first event); None for an
        event that is not a stock event."""
        if not isinstance(decoded, StockFact) or not event.type.startswith("stock."):
            return None
        item = (decoded.store_id, decoded.sku)
        current = self.folded.get(item)
        if current is None:
            current = self.folded[item] = Folded(StockState())
        return current

    def flush(self, cur: Cursor) -> None:
        """The ledger rows so far (final: one per event)."""
        write_ledger(cur, self.ledger, shadow("stock_ledger"), binary=False)
        self.ledger.clear()

    def finish(self, cur: Cursor) -> None:
        """The rest of the ledger, every item's level, every alert."""
        self.flush(cur)
        with cur.copy(f"COPY {shadow('stock_levels')} ({LEVEL_COLUMNS}) FROM STDIN") as copy:
            for item, folded in self.folded.items():
                row = msgspec.structs.astuple(level_row(item, folded))
                # updated_at as copy_time writes it; the state's JSON as text.
                copy.write_row((*row[:-2], copy_time(row[-2]), bytes(row[-1]).decode()))
        self.alerts.write(cur, shadow("alerts"))
