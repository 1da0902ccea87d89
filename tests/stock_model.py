"""The stock machine's model of physical stock: rule 3 folded by hand, per store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True)
class Fact:
    """An on-hand fact: a count (`count` set) or a delta, `inflow` when it is a source."""

    at: datetime
    seq: int
    delta: Decimal = ZERO
    count: Decimal | None = None
    inflow: bool = False


@dataclass
class Shelf:
    """One store's facts, folded by rule 3 independently of the domain."""

    facts: list[Fact] = field(default_factory=list)

    def anchor(self, until: datetime | None) -> Fact | None:
        """The latest count dated at or before `until` (None: ever); ties: the last recorded."""
        counts = [f for f in self.facts if f.count is not None and (until is None or f.at <= until)]
        return max(counts, key=lambda f: (f.at, f.seq), default=None)

    def on_hand(self, until: datetime | None = None) -> Decimal:
        """`on_hand` as of `until` (None: now)."""
        anchor = self.anchor(until)
        base = anchor.count if anchor is not None and anchor.count is not None else ZERO
        return base + sum(
            (
                f.delta
                for f in self.facts
                if f.count is None
                and (anchor is None or f.at > anchor.at)
                and (until is None or f.at <= until)
            ),
            ZERO,
        )

    def covered(self, quantity: Decimal, at: datetime) -> Decimal:
        """How much of a decrease dated `at` `on_hand` held wherever it applies."""
        later = sorted({f.at for f in self.facts if f.at > at})
        points: list[datetime | None] = [at]
        for time in later:
            if any(f.count is not None and at <= f.at <= time for f in self.facts):
                break
            points.append(time)
        else:
            if not any(f.count is not None and f.at >= at for f in self.facts):
                points.append(None)
        return max(ZERO, min(quantity, *(self.on_hand(p) for p in points)))

    def bound(self, returned: Callable[[Fact], Decimal]) -> Decimal:
        """What sources put there: the latest count plus every inflow after it (a return
        counted only as far as `returned` says it returns units really sold)."""
        anchor = self.anchor(None)
        base = anchor.count if anchor is not None and anchor.count is not None else ZERO
        after = [f for f in self.facts if f.inflow and (anchor is None or f.at > anchor.at)]
        return base + sum((returned(f) for f in after), ZERO)


@dataclass
class Sold:
    """A sale document: what it sold, what `on_hand` really covered, what came back."""

    store: str
    sale_id: str
    quantity: Decimal
    covered: Decimal
    returned: Decimal = ZERO
