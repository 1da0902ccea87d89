"""A plain-Python oracle of the stock read models, straight from product.md's rules.

Independent of the domain's `evolve`: on_hand is "the latest count by occurred_at plus
every delta dated after it", the other quantities are sums.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
ON_HAND = {
    "stock.received": 1,
    "stock.sold": -1,
    "stock.returned": 1,
    "stock.reservation_fulfilled": -1,
    "stock.transfer_dispatched": -1,
    "stock.transfer_received": 1,
    "stock.transfer_cancelled": 1,
}
RESERVED = {
    "stock.reserved": 1,
    "stock.reservation_released": -1,
    "stock.reservation_expired": -1,
    "stock.reservation_fulfilled": -1,
}
IN_TRANSIT_IN = {
    "stock.transfer_incoming": 1,
    "stock.transfer_received": -1,
    "stock.transfer_withdrawn": -1,
}
IN_TRANSIT_OUT = {
    "stock.transfer_dispatched": 1,
    "stock.transfer_delivered": -1,
    "stock.transfer_cancelled": -1,
}


@dataclass(frozen=True)
class Fact:
    """One stock event as the oracle needs it."""

    seq: int
    position: int
    version: int
    store: str
    sku: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    data: dict[str, Any]

    @property
    def on_hand_delta(self) -> Decimal:
        """The delta it states (0 for a return not restocked)."""
        if self.type == "stock.adjusted":
            return Decimal(self.data["delta"])
        if self.type == "stock.returned" and not self.data.get("restock", True):
            return ZERO
        return ON_HAND.get(self.type, 0) * Decimal(self.data.get("quantity", 0))

    def signed(self, table: dict[str, int]) -> Decimal:
        """Its quantity signed by `table`."""
        return table.get(self.type, 0) * Decimal(self.data.get("quantity", 0))


def facts(rows: Iterable[tuple[Any, ...]]) -> list[Fact]:
    """Facts from `SELECT seq, position, version, store, sku, type, occurred_at,
    recorded_at, data::text FROM events`."""
    return [Fact(*row[:8], json.loads(row[8])) for row in rows]


def anchor(history: list[Fact]) -> Fact | None:
    """The latest count by occurred_at (a tie goes to the later one)."""
    counts = [f for f in history if f.type == "stock.counted"]
    return max(counts, key=lambda f: (f.occurred_at, f.seq), default=None)


def level(history: list[Fact]) -> dict[str, Decimal | None]:
    """The quantities after `history` (one item's facts in seq order)."""
    count = anchor(history)
    base = Decimal(count.data["counted"]) if count else ZERO
    on_hand = base + sum(
        (f.on_hand_delta for f in history if count is None or f.occurred_at > count.occurred_at),
        ZERO,
    )
    reserved = sum((f.signed(RESERVED) for f in history), ZERO)
    points = [f for f in history if f.type == "stock.reorder_point_set"]
    return {
        "on_hand": on_hand,
        "reserved": reserved,
        "available": on_hand - reserved,
        "in_transit_in": sum((f.signed(IN_TRANSIT_IN) for f in history), ZERO),
        "in_transit_out": sum((f.signed(IN_TRANSIT_OUT) for f in history), ZERO),
        "reorder_min": Decimal(points[-1].data["minimum"]) if points else None,
    }


def absorbed(earlier: list[Fact], fact: Fact) -> bool:
    """Rule 3: a delta dated at or before a known count, a count dated before one."""
    count = anchor(earlier)
    if count is None:
        return False
    if fact.type == "stock.counted":
        return fact.occurred_at < count.occurred_at
    return fact.type in {*ON_HAND, "stock.adjusted"} and fact.occurred_at <= count.occurred_at


def ledger(history: list[Fact]) -> list[tuple[Any, ...]]:
    """(seq, type, on_hand_after, reserved_after, available_after, absorbed) per fact."""
    rows = []
    for index, fact in enumerate(history):
        after = level(history[: index + 1])
        rows.append(
            (
                fact.seq,
                fact.type,
                after["on_hand"],
                after["reserved"],
                after["available"],
                absorbed(history[:index], fact),
            )
        )
    return rows


class AlertLog:
    """Alerts opened and closed, at most one open per kind."""

    def __init__(self) -> None:
        self.found: list[list[Any]] = []
        self.open: dict[str, list[Any]] = {}
        self.oversold = False  # the open negative_stock alert names an oversold sale

    def hold(self, kind: str, condition: bool, seq: int) -> None:
        if condition and kind not in self.open:
            self.open[kind] = [kind, seq, None]
            self.found.append(self.open[kind])
        elif not condition and kind in self.open:
            self.close(kind, seq)

    def close(self, kind: str, seq: int) -> None:
        self.open.pop(kind)[2] = seq
        if kind == "negative_stock":
            self.oversold = False

    def negative(self, fact: Fact, below_zero: bool, late: bool) -> None:
        """Rule 4: a sale with a shortfall opens it even when a count absorbed it; that
        alert closes only at a recount (a count not absorbed)."""
        if fact.type == "stock.sold" and Decimal(fact.data.get("shortfall", 0)) > 0:
            if "negative_stock" not in self.open:
                self.hold("negative_stock", True, fact.seq)
                self.oversold = True
            return
        if self.oversold:
            if fact.type != "stock.counted" or late:
                return
            self.close("negative_stock", fact.seq)
        self.hold("negative_stock", below_zero, fact.seq)


def alerts(history: list[Fact]) -> list[tuple[str, int, int | None]]:
    """(kind, opened_seq, closed_seq) of every alert, from the levels after each fact."""
    log = AlertLog()
    for index, fact in enumerate(history):
        before, after = level(history[:index]), level(history[: index + 1])
        late = absorbed(history[:index], fact)
        minimum = after["reorder_min"]
        log.hold("low_stock", minimum is not None and after["available"] < minimum, fact.seq)  # type: ignore[operator]
        log.negative(fact, after["on_hand"] < 0, late)  # type: ignore[operator]
        if fact.type == "stock.counted" and not late:
            if "count_discrepancy" in log.open:
                log.close("count_discrepancy", fact.seq)
            log.hold("count_discrepancy", after["on_hand"] != before["on_hand"], fact.seq)
    return sorted((kind, opened, closed) for kind, opened, closed in log.found)


def as_of(history: list[Fact], when: datetime, known: datetime) -> dict[str, Decimal | None]:
    """The level from what occurred by `when` and was recorded by `known`."""
    return level([f for f in history if f.occurred_at <= when and f.recorded_at <= known])
