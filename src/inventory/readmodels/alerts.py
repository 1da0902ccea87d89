"""`alerts`: low stock, negative stock and count discrepancies, opened and closed in seq order.

Each alert's condition is evaluated after every event of its item, against the open
alerts read once per batch, so an alert opens once and closes once however the events
are split into batches.

Table: projections/0007_stock_ledger.sql (`alerts`, beside the ledger: the stock
projector, stock_levels/projector.py, folds levels, ledger and alerts at once).
The API's reads are alert_reads.py's (with acknowledgements, which are events on the
primary so that a rebuild of this table keeps them); the feed's are feed_publication.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from inventory.domain.events import StockCounted, StockEvent, StockSold
from inventory.domain.state import StockState, level_of
from inventory.readmodels.projection import Cursor, ReplicaEvent

Key = tuple[str, str, str]  # store, sku, kind

OPEN_ALERTS = """
SELECT a.store, a.sku, a.kind, a.id, a.details ? 'sale_id' FROM alerts AS a
JOIN unnest(%s::text[], %s::text[]) AS item(store, sku) USING (store, sku)
WHERE a.closed_seq IS NULL
"""
CLOSE = """
UPDATE alerts SET closed_seq = c.seq, closed_at = c.at
FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS c(id, seq, at)
WHERE alerts.id = c.id
"""
COLUMNS = "store, sku, kind, opened_seq, opened_at, closed_seq, closed_at, details"


@dataclass
class NewAlert:
    """An alert opened in this batch (and perhaps closed in it too)."""

    store: str
    sku: str
    kind: str
    opened_seq: int
    opened_at: datetime
    details: dict[str, Any]
    closed_seq: int | None = None
    closed_at: datetime | None = None


class AlertBook:
    """The open alerts of a batch's items and what the batch changes about them."""

    def __init__(self, existing: dict[Key, int], oversales: set[Key] | None = None) -> None:
        self.existing = existing
        # Open `negative_stock` alerts that name an oversold sale: only a recount closes them.
        self.oversales = oversales or set()
        self.opened: dict[Key, NewAlert] = {}
        self.new: list[NewAlert] = []
        self.closed: list[tuple[int, int, datetime]] = []

    @classmethod
    def load(cls, cur: Cursor, items: list[tuple[str, str]]) -> AlertBook:
        """The open alerts of `items`, in one query."""
        cur.execute(OPEN_ALERTS, ([s for s, _ in items], [k for _, k in items]))
        rows = cur.fetchall()
        return cls(
            {(store, sku, kind): id_ for store, sku, kind, id_, _ in rows},
            {(store, sku, kind) for store, sku, kind, _, names_sale in rows if names_sale},
        )

    def observe(
        self,
        replica: ReplicaEvent,
        event: StockEvent,
        before: StockState,
        after: StockState,
        *,
        absorbed: bool,
    ) -> None:
        """Open or close the item's alerts after `event` moved it from `before` to `after`."""
        level = level_of(after)
        low = after.reorder_min is not None and level.available < after.reorder_min
        low_details = {"available": level.available, "reorder_min": after.reorder_min}
        self._hold(replica, event, "low_stock", low, low_details)
        self._negative(replica, event, after, absorbed=absorbed)
        if isinstance(event, StockCounted) and not absorbed:
            difference = after.on_hand - before.on_hand
            key = (event.store_id, event.sku, "count_discrepancy")
            self._close(key, replica)  # a newer count supersedes the open discrepancy
            details = {
                "counted": event.counted,
                "expected": event.counted - difference,
                "difference": difference,
            }
            self._hold(replica, event, "count_discrepancy", difference != 0, details)

    def _negative(
        self, replica: ReplicaEvent, event: StockEvent, after: StockState, *, absorbed: bool
    ) -> None:
        """`negative_stock` while `on_hand` is below zero, and from a sale that sold more than
        was available at its business time (rule 4), even one a count absorbed: that alert
        names the sale and stays open until a recount (a count not absorbed)."""
        key = (event.store_id, event.sku, "negative_stock")
        if isinstance(event, StockSold) and event.shortfall > 0:
            details = {"on_hand": after.on_hand, "sale_id": event.sale_id}
            if key not in self.existing and key not in self.opened:
                self.oversales.add(key)
            self._hold(
                replica, event, "negative_stock", True, details | {"shortfall": event.shortfall}
            )
            return
        if key in self.oversales:
            if not isinstance(event, StockCounted) or absorbed:
                return
            self._close(key, replica)  # a recount settles it; still below zero opens anew
        self._hold(replica, event, "negative_stock", after.on_hand < 0, {"on_hand": after.on_hand})

    def _hold(
        self,
        replica: ReplicaEvent,
        event: StockEvent,
        kind: str,
        condition: bool,
        details: dict[str, Any],
    ) -> None:
        key = (event.store_id, event.sku, kind)
        is_open = key in self.existing or key in self.opened
        if condition and not is_open:
            alert = NewAlert(
                event.store_id, event.sku, kind, replica.seq, event.occurred_at, details
            )
            self.opened[key] = alert
            self.new.append(alert)
        elif not condition and is_open:
            self._close(key, replica)

    def _close(self, key: Key, replica: ReplicaEvent) -> None:
        self.oversales.discard(key)
        if key in self.existing:
            self.closed.append((self.existing.pop(key), replica.seq, replica.occurred_at))
        elif key in self.opened:
            alert = self.opened.pop(key)
            alert.closed_seq, alert.closed_at = replica.seq, replica.occurred_at

    def write(self, cur: Cursor, table: str = "alerts") -> None:
        """Close first (the one-open-alert index), then COPY the new alerts in."""
        if self.closed:
            cur.execute(CLOSE, [list(column) for column in zip(*self.closed, strict=True)])
        if not self.new:
            return
        with cur.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
            for a in self.new:
                details = msgspec.json.encode(a.details).decode()
                copy.write_row(
                    (
                        a.store,
                        a.sku,
                        a.kind,
                        a.opened_seq,
                        a.opened_at,
                        a.closed_seq,
                        a.closed_at,
                        details,
                    )
                )
