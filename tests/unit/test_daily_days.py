"""Daily movement totals date every event on a local day, even one stored before the
business-time window existed (a year-1 sale), instead of stopping the store's projections."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from inventory.domain.stock_events import StockSold
from inventory.readmodels.daily_movements import Totals
from inventory.readmodels.projection import ReplicaEvent


def sold_at(at: datetime) -> tuple[ReplicaEvent, StockSold]:
    """A sale of 2 of A in store s, as the replica would hold it."""
    event = StockSold(store_id="s", sku="A", sale_id="x", quantity=Decimal(2), occurred_at=at)
    replica = ReplicaEvent(
        seq=1,
        position=1,
        stream="stock-s-A",
        version=1,
        type="stock.sold",
        store="s",
        sku="A",
        data=b"{}",
        metadata=b"{}",
        occurred_at=at,
        recorded_at=at,
        partition="s",
    )
    return replica, event


@pytest.mark.parametrize(
    ("zone", "at", "day"),
    [
        # New York's local mean time (-4:56) puts midnight of year 1 in year 0.
        ("America/New_York", datetime(1, 1, 1, tzinfo=UTC), date.min),
        ("Pacific/Kiritimati", datetime(9999, 12, 31, 23, tzinfo=UTC), date.max),
        ("Etc/GMT+12", datetime(2000, 1, 1, tzinfo=UTC), date(1999, 12, 31)),
        ("Pacific/Kiritimati", datetime(2000, 1, 1, tzinfo=UTC), date(2000, 1, 1)),
    ],
)
def test_an_event_counts_on_a_local_day_whatever_its_date(
    zone: str, at: datetime, day: date
) -> None:
    totals = Totals({"s": zone})
    totals.feed(*sold_at(at))
    assert totals.folded == {("s", day, "A", "stock.sold"): (1, Decimal(2))}
