"""Rule 3: counts anchor `on_hand`; late movements dated before the latest count are absorbed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.domain.errors import ValidationRejected, VersionConflict
from inventory.domain.events import StockCounted, StockSold
from inventory.domain.state import DETAIL_LIMIT, is_absorbed
from inventory.domain.stock_evolution import event_is_absorbed
from tests.unit.domain.scenario import (
    Scenario,
    at,
    count,
    product,
    receive,
    sell,
    store,
)


@pytest.fixture
def shop() -> Scenario:
    """Store s1 (deny) selling A and B, 10 of each received an hour ago."""
    scenario = Scenario(store("s1"), product("A"), product("B"))
    scenario.when(receive(("A", 10), ("B", 10), minutes=-60))
    return scenario


def test_a_count_sets_on_hand(shop: Scenario) -> None:
    events = shop.when(count(("A", 7), minutes=-10))
    assert events == [StockCounted(store_id="s1", sku="A", occurred_at=at(-10), counted=Decimal(7))]
    assert shop.level("s1", "A").on_hand == 7


def test_a_count_only_touches_the_skus_it_lists(shop: Scenario) -> None:
    shop.when(count(("A", 0), minutes=-10))
    assert shop.level("s1", "B").on_hand == 10


def test_a_late_sale_before_a_count_is_absorbed(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=-10))
    events = shop.when(sell("late", ("A", 2), minutes=-20, offline=True))
    assert any(isinstance(event, StockSold) for event in events)
    assert shop.level("s1", "A").on_hand == 7
    assert is_absorbed(shop.stock("s1", "A"), at(-20))


def test_a_late_sale_after_a_count_stacks(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=-10))
    shop.when(sell("late", ("A", 2), minutes=-5, offline=True))
    assert shop.level("s1", "A").on_hand == 5


def test_a_sale_dated_exactly_at_the_count_is_absorbed(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=-10))
    shop.when(sell("same", ("A", 2), minutes=-10))
    assert shop.level("s1", "A").on_hand == 7


def test_a_count_dated_between_movements_keeps_those_dated_after_it(shop: Scenario) -> None:
    shop.when(sell("s-30", ("A", 1), minutes=-30))
    shop.when(sell("s-10", ("A", 2), minutes=-10))
    shop.when(count(("A", 6), minutes=-20))
    assert shop.level("s1", "A").on_hand == 4


def test_an_older_count_than_the_latest_is_recorded_and_absorbed(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=-10))
    events = shop.when(count(("A", 3), minutes=-30))
    assert len(events) == 1
    assert shop.level("s1", "A").on_hand == 7


def test_a_count_with_a_stale_expected_version_is_a_conflict(shop: Scenario) -> None:
    with pytest.raises(VersionConflict) as rejected:
        shop.decide(count(("A", 7), expected_version=0))
    assert rejected.value.code == "version_conflict"
    assert rejected.value.errors == [{"sku": "A", "expected_version": 0, "current_version": 1}]


def test_a_count_with_the_current_expected_version_carries_it_to_the_append(
    shop: Scenario,
) -> None:
    (change,) = shop.decide(count(("A", 7), expected_version=1))
    assert change.expected_version == 1
    assert change.stream == "stock-s1-A"


def test_a_count_does_not_need_stock_to_be_available(shop: Scenario) -> None:
    shop.when(count(("A", 0)))
    assert shop.level("s1", "A").available == 0


def test_the_state_keeps_a_bounded_number_of_movements_after_the_count(shop: Scenario) -> None:
    for minute in range(DETAIL_LIMIT + 50):
        shop.when(receive(("A", 1), minutes=-50 + minute / 1000))
    state = shop.stock("s1", "A")
    assert len(state.after_count) == DETAIL_LIMIT
    assert state.settled_through == at(-50 + 49 / 1000)
    assert state.on_hand == 10 + DETAIL_LIMIT + 50


def test_a_count_dated_inside_the_settled_stretch_is_refused_not_guessed(shop: Scenario) -> None:
    for minute in range(DETAIL_LIMIT + 50):
        shop.when(receive(("A", 1), minutes=-50 + minute / 1000))
    with pytest.raises(ValidationRejected) as rejected:
        shop.decide(count(("A", 3), minutes=-50 + 10 / 1000))
    assert rejected.value.errors[0]["field"] == "occurred_at"


def test_a_count_after_the_settled_stretch_is_exact(shop: Scenario) -> None:
    for minute in range(DETAIL_LIMIT + 50):
        shop.when(receive(("A", 1), minutes=-50 + minute / 1000))
    shop.when(count(("A", 3), minutes=-50 + 100 / 1000))
    later = DETAIL_LIMIT + 50 - 101
    assert shop.level("s1", "A").on_hand == 3 + later
    assert shop.stock("s1", "A").settled_through is None


def test_a_late_movement_inside_the_settled_stretch_still_stacks(shop: Scenario) -> None:
    for minute in range(DETAIL_LIMIT + 50):
        shop.when(receive(("A", 1), minutes=-50 + minute / 1000))
    before = shop.level("s1", "A").on_hand
    shop.when(sell("late", ("A", 4), minutes=-50 + 5 / 1000))
    assert shop.level("s1", "A").on_hand == before - 4


def test_a_count_may_be_dated_up_to_five_minutes_ahead(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=5))
    with pytest.raises(ValidationRejected):
        shop.decide(count(("A", 7), minutes=5.01))


def test_the_ledger_can_tell_which_late_events_were_absorbed(shop: Scenario) -> None:
    shop.when(count(("A", 7), minutes=-10))
    state = shop.stock("s1", "A")
    (late_sale, *_) = shop.decide(sell("late", ("A", 1), minutes=-20))
    (fresh_sale, *_) = shop.decide(sell("fresh", ("A", 1), minutes=-5))
    (older_count,) = shop.decide(count(("A", 1), minutes=-11))
    (tied_count,) = shop.decide(count(("A", 1), minutes=-10))
    assert isinstance(late_sale.event, StockSold)
    assert isinstance(fresh_sale.event, StockSold)
    assert isinstance(older_count.event, StockCounted)
    assert isinstance(tied_count.event, StockCounted)
    assert event_is_absorbed(state, late_sale.event)
    assert not event_is_absorbed(state, fresh_sale.event)
    assert event_is_absorbed(state, older_count.event)
    assert not event_is_absorbed(state, tied_count.event)


def test_a_recount_at_the_same_moment_replaces_the_count_and_keeps_settled_movements(
    shop: Scenario,
) -> None:
    shop.when(count(("A", 1), minutes=-50))
    for minute in range(DETAIL_LIMIT + 5):
        shop.when(receive(("A", 1), minutes=-40 + minute / 1000))
    assert shop.stock("s1", "A").settled_through is not None
    shop.when(count(("A", 3), minutes=-50))
    assert shop.level("s1", "A").on_hand == 3 + DETAIL_LIMIT + 5
