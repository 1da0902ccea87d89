"""Products, stores, adjustments, reorder points and period closes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.domain.commands import (
    AdjustmentLine,
    AdjustStock,
    ClosePeriod,
    DiscontinueProduct,
    OpenStore,
    RegisterProduct,
    SetReorderPoint,
    UpdateProduct,
)
from inventory.domain.errors import (
    InsufficientStock,
    PeriodClosed,
    ProductExists,
    ProductNotFound,
    StoreExists,
    ValidationRejected,
)
from inventory.domain.events import ProductRegistered, StoreOpened, StorePeriodClosed
from inventory.domain.state import ProductState, StoreState
from tests.unit.domain.scenario import NOW, Scenario, adjust, at, product, receive, sell, store


def register(sku: str = "A", decimals: int = 0) -> RegisterProduct:
    """Register a product."""
    return RegisterProduct(sku=sku, name=f"product {sku}", decimals=decimals, now=NOW)


def test_registering_a_product_records_its_details() -> None:
    scenario = Scenario()
    (change,) = scenario.decide(register("A", decimals=2))
    assert change.stream == "product-A"
    assert change.expected_version == 0
    assert change.event == ProductRegistered(sku="A", name="product A", decimals=2)


def test_a_sku_is_registered_once() -> None:
    scenario = Scenario(product("A"))
    with pytest.raises(ProductExists) as rejected:
        scenario.decide(register("A"))
    assert rejected.value.code == "product_exists"


@pytest.mark.parametrize("decimals", [-1, 4])
def test_decimals_lie_between_zero_and_three(decimals: int) -> None:
    with pytest.raises(ValidationRejected):
        Scenario().decide(register("A", decimals=decimals))


def test_updating_a_product_keeps_what_it_does_not_name() -> None:
    scenario = Scenario(ProductRegistered(sku="A", name="old", barcode="123"))
    scenario.when(UpdateProduct(sku="A", name="new", now=NOW))
    state = scenario.state("product-A")
    assert isinstance(state, ProductState)
    assert (state.name, state.barcode) == ("new", "123")


def test_updating_an_unknown_product_is_not_found() -> None:
    with pytest.raises(ProductNotFound):
        Scenario().decide(UpdateProduct(sku="A", name="new", now=NOW))


def test_a_discontinued_product_sells_through_but_is_not_received() -> None:
    scenario = Scenario(store("s1"), product("A"))
    scenario.when(receive(("A", 3), minutes=-10))
    scenario.when(DiscontinueProduct(sku="A", now=NOW))
    scenario.when(sell("s-1", ("A", 1)))
    with pytest.raises(ValidationRejected) as rejected:
        scenario.decide(receive(("A", 3)))
    assert rejected.value.errors == [
        {"line": 0, "sku": "A", "message": "the product is discontinued"}
    ]
    assert not scenario.decide(DiscontinueProduct(sku="A", now=NOW))


def test_opening_a_store_defaults_to_denying_negative_stock() -> None:
    scenario = Scenario()
    scenario.when(OpenStore(store_id="s1", name="One", now=NOW))
    state = scenario.state("store-s1")
    assert isinstance(state, StoreState)
    assert (state.exists, state.negative_stock, state.timezone) == (True, "deny", "UTC")


@pytest.mark.parametrize("timezone", ["Europe/Paris", "America/Argentina/Buenos_Aires", "UTC"])
def test_a_store_opens_in_an_iana_time_zone(timezone: str) -> None:
    scenario = Scenario()
    scenario.when(OpenStore(store_id="s1", name="One", timezone=timezone, now=NOW))
    state = scenario.state("store-s1")
    assert isinstance(state, StoreState)
    assert state.timezone == timezone


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "europe/paris", "localtime", "+02:00", ""])
def test_a_store_is_refused_a_time_zone_that_names_no_place(timezone: str) -> None:
    with pytest.raises(ValidationRejected) as rejected:
        Scenario().decide(OpenStore(store_id="s1", name="One", timezone=timezone, now=NOW))
    assert rejected.value.errors == [
        {"field": "timezone", "message": "must be an IANA time zone, e.g. Europe/Paris"}
    ]


def test_a_store_is_opened_once() -> None:
    scenario = Scenario(StoreOpened(store_id="s1", name="One"))
    with pytest.raises(StoreExists) as rejected:
        scenario.decide(OpenStore(store_id="s1", name="Again", now=NOW))
    assert rejected.value.code == "store_exists"


def test_an_adjustment_moves_on_hand_by_its_delta_with_its_reason() -> None:
    scenario = Scenario(store("s1"), product("A"))
    scenario.when(adjust("A", 4, reason="found"))
    scenario.when(adjust("A", -1, reason="damaged"))
    assert scenario.level("s1", "A").on_hand == 3


def test_a_negative_adjustment_cannot_oversell_under_deny() -> None:
    scenario = Scenario(store("s1"), product("A"))
    with pytest.raises(InsufficientStock):
        scenario.decide(adjust("A", -1))


def test_an_adjustment_of_zero_is_refused() -> None:
    scenario = Scenario(store("s1"), product("A"))
    command = AdjustStock(
        store_id="s1",
        lines=(AdjustmentLine(sku="A", delta=Decimal(0), reason="other"),),
        occurred_at=NOW,
        now=NOW,
    )
    with pytest.raises(ValidationRejected):
        scenario.decide(command)


def reorder(minimum: int, maximum: int | None = None) -> SetReorderPoint:
    """Set A's reorder point in s1."""
    return SetReorderPoint(
        store_id="s1",
        sku="A",
        minimum=Decimal(minimum),
        maximum=None if maximum is None else Decimal(maximum),
        occurred_at=NOW,
        now=NOW,
    )


def test_a_reorder_point_is_recorded_on_the_items_stream() -> None:
    scenario = Scenario(store("s1"), product("A"))
    scenario.when(reorder(2, 10))
    state = scenario.stock("s1", "A")
    assert (state.reorder_min, state.reorder_max) == (Decimal(2), Decimal(10))


def test_a_reorder_maximum_below_the_minimum_is_refused() -> None:
    scenario = Scenario(store("s1"), product("A"))
    with pytest.raises(ValidationRejected):
        scenario.decide(reorder(5, 2))


def close(until_minutes: float) -> ClosePeriod:
    """Close s1's books."""
    return ClosePeriod(store_id="s1", until=at(until_minutes), occurred_at=NOW, now=NOW)


def test_closing_a_period_refuses_later_events_dated_before_it() -> None:
    scenario = Scenario(store("s1"), product("A"))
    scenario.when(close(-60))
    with pytest.raises(PeriodClosed):
        scenario.decide(receive(("A", 1), minutes=-61))
    scenario.when(receive(("A", 1), minutes=-59))


def test_a_period_cannot_be_closed_in_the_future_or_reopened() -> None:
    scenario = Scenario(
        store("s1"), StorePeriodClosed(store_id="s1", until=at(-60), occurred_at=NOW)
    )
    with pytest.raises(ValidationRejected):
        scenario.decide(close(1))
    with pytest.raises(ValidationRejected):
        scenario.decide(close(-120))
    assert not scenario.decide(close(-60))


@pytest.mark.parametrize("store_id", ["", "north-1", "north 1"])
def test_a_store_id_keeps_stream_names_unambiguous(store_id: str) -> None:
    with pytest.raises(ValidationRejected):
        Scenario().decide(OpenStore(store_id=store_id, name="North", now=NOW))
