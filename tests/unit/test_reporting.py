"""Pure pieces of history and reports: quantities, export times, movement queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from inventory.cli.events import parse_time
from inventory.domain.events import StoreOpened, StoreUpdated
from inventory.domain.stock_events import (
    StockAdjusted,
    StockCounted,
    StockReceived,
    StockReorderPointSet,
)
from inventory.readmodels.daily_movements import MovementQuery, Totals, moved, zones_needed
from inventory.readmodels.history import EventFilter, page_query
from inventory.readmodels.projection import ReplicaEvent
from inventory.readmodels.quantities import quantity

AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal(3), 3),
        (Decimal("3.00"), 3),
        (Decimal("2.50"), "2.5"),
        (Decimal("-0.125"), "-0.125"),
        (Decimal("1E+3"), 1000),
        (None, None),
    ],
)
def test_quantities_are_integers_when_whole_and_exact_strings_otherwise(
    value: Decimal | None, shown: int | str | None
) -> None:
    assert quantity(value) == shown


def test_an_adjustment_moves_its_delta_a_count_its_count_and_a_reorder_point_nothing() -> None:
    lost = StockAdjusted(store_id="s", sku="k", occurred_at=AT, delta=Decimal(-2), reason="lost")
    counted = StockCounted(store_id="s", sku="k", occurred_at=AT, counted=Decimal(7))
    reorder = StockReorderPointSet(store_id="s", sku="k", occurred_at=AT, minimum=Decimal(1))
    assert moved(lost) == Decimal(-2)
    assert moved(counted) == Decimal(7)
    assert moved(reorder) is None


def replica_event(seq: int, event_type: str, at: datetime, sku: str | None = None) -> ReplicaEvent:
    return ReplicaEvent(seq, seq, "stream", seq, event_type, "s", sku, b"{}", b"{}", at, at, "s")


def test_a_change_of_zone_dates_the_movements_recorded_after_it_and_none_before() -> None:
    """Both receipts happen at 20:00 UTC on 1 March: 1 March in UTC, 2 March in Tokyo."""
    at = AT + timedelta(hours=20)
    received = StockReceived(store_id="s", sku="k", occurred_at=at, quantity=Decimal(1))
    totals = Totals({})
    totals.feed(replica_event(1, "store.opened", AT), StoreOpened(store_id="s", name="S"))
    totals.feed(replica_event(2, "stock.received", at, "k"), received)
    totals.feed(replica_event(3, "store.updated", AT), StoreUpdated(store_id="s", name="T"))
    totals.feed(replica_event(4, "stock.received", at, "k"), received)  # no zone given: kept
    zone = StoreUpdated(store_id="s", timezone="Asia/Tokyo")
    totals.feed(replica_event(5, "store.updated", AT), zone)
    totals.feed(replica_event(6, "stock.received", at, "k"), received)
    assert totals.folded == {
        ("s", date(2026, 3, 1), "k", "stock.received"): (2, Decimal(2)),
        ("s", date(2026, 3, 2), "k", "stock.received"): (1, Decimal(1)),
    }
    assert totals.zones == {"s": "Asia/Tokyo"}


def test_a_zone_this_machine_does_not_know_dates_by_utc() -> None:
    totals = Totals({"s": "Mars/Olympus"})
    received = StockReceived(store_id="s", sku="k", occurred_at=AT, quantity=Decimal(1))
    totals.feed(replica_event(1, "stock.received", AT - timedelta(minutes=1), "k"), received)
    assert list(totals.folded) == [("s", date(2026, 2, 28), "k", "stock.received")]


def test_export_times_take_rfc_3339_or_a_date_at_midnight_utc() -> None:
    assert parse_time("2026-03-01") == AT
    assert parse_time("2026-03-01T02:00:00+02:00") == AT
    assert parse_time("2026-03-01T00:00:00") == AT
    assert parse_time("2026-03-01T00:00:00+02:00").utcoffset() == timedelta(hours=2)
    assert parse_time("2026-03-01T00:00:00+02:00").tzinfo == timezone(timedelta(hours=2))
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time("yesterday")


def test_queries_name_only_the_filters_given() -> None:
    everything = MovementQuery().sql().as_string(None)
    one_store = MovementQuery(["s1"], "k", date(2026, 1, 1), date(2026, 1, 31)).sql()

    assert "WHERE true GROUP BY" in everything
    assert "store = ANY('{s1}')" in one_store.as_string(None)
    assert "day <= '2026-01-31'::date" in one_store.as_string(None)
    assert "p.part" in page_query(EventFilter(["s1"]), 0, 10).as_string(None)
    assert "sku = 'k'" in page_query(EventFilter(["s1"], "k"), 0, 10).as_string(None)


def test_a_batch_reads_the_zone_of_every_store_it_does_not_open() -> None:
    batch = [
        replica_event(1, "store.updated", AT),  # may name no zone: the stored one still holds
        replica_event(2, "stock.received", AT, "k"),
    ]
    assert zones_needed(batch) == ["s"]
    assert zones_needed([replica_event(1, "store.opened", AT), *batch]) == []
    assert zones_needed([replica_event(1, "stock.reorder_point_set", AT, "k")]) == []
