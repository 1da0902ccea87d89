"""`stock_ledger` for a rebuild by set-based SQL: running sums per item over the events.

The stock projector's fold (stock_levels/projector.py) gives each event's ledger row from
the item's state before and after it. Over the events of an item in seq order the same
row is a window computation (rule 3, `stock_evolution.py`):

- `counted_at` before an event is the latest `occurred_at` of the item's earlier counts
  (a count dated before it is ignored, one dated at or after it becomes the anchor);
- a count that becomes the anchor starts a segment: `on_hand` is its quantity plus every
  earlier non-zero on-hand delta dated after it (each was absorbed by no anchor: they are
  all dated after every earlier one), then plus every delta of the segment not absorbed
  (dated after the anchor);
- `reserved` and the in-transit quantities are running sums of their deltas.

The domain keeps only DETAIL_LIMIT movements after a count one by one, and a tie of two
counts keeps the older count's decimals in `on_hand`; the copy's `store`, `sku` and
`occurred_at` columns are the event's own in every event the service writes. Where any
of these differs from that rule (`hard`), the fold writes the item's rows itself from that
event on (`StatesBuilder`), and the statement leaves every seq the fold wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from inventory.domain.evolution import evolve
from inventory.domain.state import StockState
from inventory.domain.stock_events import STOCK_EVENTS, StockCounted, StockEvent
from inventory.domain.stock_evolution import event_is_absorbed
from inventory.readmodels.projection import Cursor, ReplicaEvent, shadow
from inventory.readmodels.stock_levels.projector import Item, StockBuilder, fold

TYPES = sorted(str(kind.__struct_config__.tag) for kind in STOCK_EVENTS)
ON_HAND = (
    "'stock.received', 'stock.sold', 'stock.returned', 'stock.adjusted',"
    " 'stock.reservation_fulfilled', 'stock.transfer_dispatched', 'stock.transfer_received',"
    " 'stock.transfer_cancelled'"
)
# Each event's on-hand delta as `movement_delta` and the transfer and reservation moves
# give it (0 for a return not restocked, NULL for a type that never moves on-hand).
DELTA = """CASE WHEN {e}.type IN ('stock.received', 'stock.transfer_received',
                               'stock.transfer_cancelled') THEN {q}
     WHEN {e}.type IN ('stock.sold', 'stock.reservation_fulfilled',
                       'stock.transfer_dispatched') THEN -{q}
     WHEN {e}.type = 'stock.adjusted' THEN ({e}.data->>'delta')::numeric
     WHEN {e}.type = 'stock.returned' THEN
          CASE WHEN coalesce(({e}.data->>'restock')::boolean, true) THEN {q} ELSE 0 END
END"""
# A backdated anchor's base: the earlier non-zero deltas dated after it (the SKU's index).
LATER = (
    "(SELECT sum(x.d) FROM (SELECT "
    + DELTA.format(e="m", q="(m.data->>'quantity')::numeric")
    + f""" AS d FROM events AS m
    WHERE m.sku = a.sku AND m.seq < a.seq AND m.store = a.store
      AND m.occurred_at > a.at AND m.type IN ({ON_HAND})) AS x WHERE x.d <> 0)"""
)
LEDGER = (
    """
WITH typed AS (
    SELECT e.seq, e.position, e.store, e.sku,
           e.version, e.type, e.occurred_at AS at,
           e.recorded_at,
           CASE WHEN e.type = 'stock.counted' THEN (e.data->>'counted')::numeric END AS counted,
           """
    + DELTA.format(e="e", q="e.q")
    + """ AS d,
           CASE e.type WHEN 'stock.reserved' THEN e.q
                WHEN 'stock.reservation_released' THEN -e.q
                WHEN 'stock.reservation_expired' THEN -e.q
                WHEN 'stock.reservation_fulfilled' THEN -e.q END AS dr,
           CASE e.type WHEN 'stock.transfer_incoming' THEN e.q
                WHEN 'stock.transfer_received' THEN -e.q
                WHEN 'stock.transfer_withdrawn' THEN -e.q END AS di,
           CASE e.type WHEN 'stock.transfer_dispatched' THEN e.q
                WHEN 'stock.transfer_delivered' THEN -e.q
                WHEN 'stock.transfer_cancelled' THEN -e.q END AS dt,
           CASE WHEN e.type = 'stock.adjusted' THEN e.data->>'reason' END AS reason,
           CASE WHEN e.type = 'stock.received' THEN e.data->>'reference'
                WHEN e.type IN ('stock.sold', 'stock.returned', 'stock.reservation_fulfilled')
                    THEN e.data->>'sale_id'
                WHEN e.type IN ('stock.reserved', 'stock.reservation_released',
                                'stock.reservation_expired') THEN e.data->>'reservation_id'
                WHEN e.type LIKE 'stock.transfer%%' THEN e.data->>'transfer_id' END AS reference,
           CASE WHEN jsonb_typeof(e.metadata->'actor'->'id') = 'string'
                THEN e.metadata->'actor'->>'id' END AS actor
    FROM (
        SELECT ev.*, (ev.data->>'quantity')::numeric AS q
        FROM unnest(%(partitions)s::text[], %(lasts)s::bigint[]) AS b(partition, last)
        JOIN events AS ev ON ev.partition = b.partition AND ev.seq <= b.last
        WHERE ev.type = ANY(%(types)s) AND ev.store IS NOT NULL AND ev.sku IS NOT NULL
        OFFSET 0  -- each event's quantity extracted once, not once per use
    ) AS e
    OFFSET 0  -- narrow rows to sort: the JSON left behind
),
a AS (
    SELECT t.*,
           coalesce(max(at) FILTER (WHERE type = 'stock.counted') OVER upto,
                    '-infinity') AS seg,
           max(at) FILTER (WHERE d <> 0) OVER upto AS latest,
           0 + coalesce(sum(dr) OVER upto, 0) AS reserved,
           0 + coalesce(sum(di) OVER upto, 0) AS in_in,
           0 + coalesce(sum(dt) OVER upto, 0) AS in_out
    FROM typed AS t
    WINDOW upto AS (PARTITION BY store, sku ORDER BY seq ROWS UNBOUNDED PRECEDING)
),
c AS (
    SELECT a.*,
           coalesce(first_value(CASE WHEN type = 'stock.counted' AND at = seg
                                     THEN counted + CASE WHEN latest > at THEN coalesce("""
    + LATER
    + """, 0) ELSE 0 END END) OVER segment, 0)
             + coalesce(sum(CASE WHEN d <> 0 AND at > seg THEN d END) OVER segment, 0)
             AS on_hand
    FROM a
    WINDOW segment AS (PARTITION BY store, sku, seg ORDER BY seq ROWS UNBOUNDED PRECEDING)
),
done AS (
    SELECT c.*, on_hand - lag(on_hand, 1, 0::numeric) OVER (PARTITION BY store, sku
                                                           ORDER BY seg, seq) AS change
    FROM c
)
INSERT INTO {table} (seq, position, store, sku, version, type, occurred_at, recorded_at,
    delta, counted, reserved_delta, in_transit_in_delta, in_transit_out_delta, on_hand_after,
    reserved_after, available_after, in_transit_in_after, in_transit_out_after, reason,
    reference, actor, absorbed)
SELECT seq, position, store, sku, version, type, at, recorded_at,
       CASE WHEN type = 'stock.counted' THEN change WHEN d <> 0 THEN d ELSE 0 END,
       counted, coalesce(dr, 0), coalesce(di, 0), coalesce(dt, 0), on_hand, reserved,
       on_hand - reserved, in_in, in_out, reason, reference, actor,
       CASE WHEN type = 'stock.counted' THEN at < seg ELSE d IS NOT NULL AND at <= seg END
FROM done AS r
WHERE NOT EXISTS (SELECT FROM {table} AS folded WHERE folded.seq = r.seq)
"""
)
# The statement sorts every stock event once (twice for an item's later anchors): in
# memory rather than on disk, for this transaction only.
SORT_MEMORY = "256MB"


class LedgerBuild:
    """The ledger's rows by one statement, up to the stock projector's bounds; the seqs
    the fold wrote (`StatesBuilder`'s hard items) are left as it wrote them."""

    def build(self, cur: Cursor, bounds: Mapping[str, int]) -> None:
        """Every stock event's row not written yet."""
        arguments = {"partitions": list(bounds), "lasts": list(bounds.values()), "types": TYPES}
        cur.execute("SELECT set_config('work_mem', %s, true)", (SORT_MEMORY,))
        cur.execute(LEDGER.replace("{table}", shadow("stock_ledger")), arguments)


class StatesBuilder(StockBuilder):
    """The stock fold without the ledger (`LedgerBuild` writes it): every item's state and
    alerts; an item's ledger rows only from an event the SQL cannot give on (`hard`)."""

    def __init__(self) -> None:
        super().__init__()
        self.hard: set[Item] = set()

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Fold a stock event onto its item (with its ledger row once the item is hard)."""
        current = self.item_of(event, decoded)
        if current is None:
            return
        before, stock = current.state, cast("StockEvent", decoded)
        item = (stock.store_id, stock.sku)
        if item in self.hard or self._hard(event, stock, before):
            fold(current, event, stock, self.ledger, self.alerts)
            return
        absorbed = event_is_absorbed(before, stock)
        after = evolve(before, stock)
        self.alerts.observe(event, stock, before, after, absorbed=absorbed)
        current.state, current.event = after, event

    def _hard(self, event: ReplicaEvent, decoded: StockEvent, before: StockState) -> bool:
        """Whether the SQL's rows for the item are not the fold's from this event on: a
        count in the domain's settled stretch or tied with the anchor, or columns that are
        not the event's (then the item the columns name is the fold's too)."""
        if (
            event.store == decoded.store_id
            and event.sku == decoded.sku
            and event.occurred_at == decoded.occurred_at
        ):
            if not isinstance(decoded, StockCounted):
                return False
            if before.settled_through is None and decoded.occurred_at != before.counted_at:
                return False
        else:
            self.hard.add((event.store or "", event.sku or ""))
        self.hard.add((decoded.store_id, decoded.sku))
        return True
