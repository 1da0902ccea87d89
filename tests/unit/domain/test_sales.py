"""Sales: no oversell under `deny`, offline sales always recorded, atomic lines, natural keys."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.domain.commands import RecordReturn
from inventory.domain.errors import (
    DuplicateSale,
    InsufficientStock,
    PeriodClosed,
    ProductNotFound,
    ReturnExceedsSale,
    SaleNotFound,
    StoreNotFound,
    ValidationRejected,
)
from inventory.domain.events import (
    SaleRecorded,
    SaleReturned,
    StockReturned,
    StockSold,
    StorePeriodClosed,
)
from inventory.domain.state import SaleState
from tests.unit.domain.scenario import (
    NOW,
    Scenario,
    at,
    lines,
    product,
    receive,
    sell,
    store,
)


@pytest.fixture
def shop() -> Scenario:
    """Store s1 (deny) with 5 A, 5 B and 2.5 kg of C (3 decimals) received an hour ago."""
    scenario = Scenario(store("s1"), product("A"), product("B"), product("C", decimals=3))
    scenario.when(receive(("A", 5), ("B", 5), ("C", "2.5"), minutes=-60))
    return scenario


def give_back(sale_id: str, *pairs: tuple[str, int | str], restock: bool = True) -> RecordReturn:
    """A return against a sale in s1."""
    return RecordReturn(
        store_id="s1",
        sale_id=sale_id,
        lines=lines(*pairs),
        restock=restock,
        occurred_at=NOW,
        now=NOW,
    )


def test_a_sale_appends_one_event_per_line_and_the_sale_document(shop: Scenario) -> None:
    changes = shop.decide(sell("s-1", ("A", 2), ("B", 1)))
    assert [change.stream for change in changes] == ["stock-s1-A", "stock-s1-B", "sale-s1-s-1"]
    assert changes[0].event == StockSold(
        store_id="s1", sku="A", occurred_at=NOW, quantity=Decimal(2), sale_id="s-1"
    )
    assert isinstance(changes[2].event, SaleRecorded)
    assert changes[2].expected_version == 0
    assert (changes[0].store, changes[0].sku, changes[0].occurred_at) == ("s1", "A", NOW)


def test_a_sale_lowers_on_hand_and_available(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 2)))
    level = shop.level("s1", "A")
    assert (level.on_hand, level.available) == (Decimal(3), Decimal(3))


def test_a_sale_beyond_available_is_refused_with_the_shortfall_per_line(shop: Scenario) -> None:
    with pytest.raises(InsufficientStock) as rejected:
        shop.decide(sell("s-1", ("A", 6), ("B", 1), ("C", 3)))
    assert rejected.value.code == "insufficient_stock"
    assert rejected.value.errors == [
        {"sku": "A", "available": 5, "requested": 6},
        {"sku": "C", "available": Decimal("2.5"), "requested": 3},
    ]


def test_a_sale_whose_third_line_is_short_appends_nothing(shop: Scenario) -> None:
    with pytest.raises(InsufficientStock):
        shop.when(sell("s-1", ("A", 1), ("B", 1), ("C", 9)))
    assert shop.level("s1", "A").on_hand == 5
    assert not shop.events("sale-s1-s-1")


def test_an_offline_sale_is_always_recorded_even_below_zero(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 8), offline=True))
    assert shop.level("s1", "A").available == -3


def test_a_store_that_allows_negative_stock_records_every_sale() -> None:
    scenario = Scenario(store("s2", negative_stock="allow"), product("A"))
    scenario.when(sell("s-1", ("A", 3), store_id="s2"))
    assert scenario.level("s2", "A").on_hand == -3


def test_a_sale_id_is_used_once_per_store(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 1)))
    with pytest.raises(DuplicateSale) as rejected:
        shop.decide(sell("s-1", ("B", 1)))
    assert rejected.value.code == "duplicate_sale"


def test_the_same_sale_id_may_be_used_in_another_store(shop: Scenario) -> None:
    shop.given(store("s2", negative_stock="allow"))
    shop.when(sell("s-1", ("A", 1)))
    shop.when(sell("s-1", ("A", 1), store_id="s2"))


def test_more_decimals_than_the_product_allows_is_refused_per_line(shop: Scenario) -> None:
    with pytest.raises(ValidationRejected) as rejected:
        shop.decide(sell("s-1", ("A", "1.5"), ("C", "0.0005"), ("B", "2.000")))
    assert rejected.value.code == "validation_failed"
    assert [(error["line"], error["sku"]) for error in rejected.value.errors] == [
        (0, "A"),
        (1, "C"),
    ]


@pytest.mark.parametrize("quantity", ["0", "-1", "1000000000001", "NaN", "Infinity"])
def test_a_quantity_must_be_positive_finite_and_within_ten_to_the_twelve(
    shop: Scenario, quantity: str
) -> None:
    with pytest.raises(ValidationRejected):
        shop.decide(sell("s-1", ("A", quantity)))


def test_a_sku_may_appear_only_once_per_command(shop: Scenario) -> None:
    with pytest.raises(ValidationRejected) as rejected:
        shop.decide(sell("s-1", ("A", 1), ("A", 1)))
    assert rejected.value.errors == [{"line": 1, "sku": "A", "message": "SKU listed twice"}]


def test_a_command_needs_at_least_one_line(shop: Scenario) -> None:
    with pytest.raises(ValidationRejected):
        shop.decide(sell("s-1"))


def test_a_command_holds_at_most_a_thousand_lines() -> None:
    skus = [f"P{index}" for index in range(1001)]
    scenario = Scenario(store("s1", negative_stock="allow"), *(product(sku) for sku in skus))
    with pytest.raises(ValidationRejected):
        scenario.decide(sell("s-1", *((sku, 1) for sku in skus)))


def test_a_sale_more_than_five_minutes_in_the_future_is_refused(shop: Scenario) -> None:
    with pytest.raises(ValidationRejected) as rejected:
        shop.decide(sell("s-1", ("A", 1), minutes=6))
    assert rejected.value.errors[0]["field"] == "occurred_at"


def test_a_sale_in_an_unknown_store_is_not_found(shop: Scenario) -> None:
    with pytest.raises(StoreNotFound) as rejected:
        shop.decide(sell("s-1", ("A", 1), store_id="nowhere"))
    assert rejected.value.code == "store_not_found"


def test_a_sale_of_an_unknown_sku_is_not_found(shop: Scenario) -> None:
    with pytest.raises(ProductNotFound) as rejected:
        shop.decide(sell("s-1", ("A", 1), ("Z", 1)))
    assert rejected.value.errors == [{"sku": "Z"}]


def test_a_sale_dated_at_or_before_the_period_close_is_refused(shop: Scenario) -> None:
    shop.given(StorePeriodClosed(store_id="s1", until=at(-30), occurred_at=NOW))
    with pytest.raises(PeriodClosed) as rejected:
        shop.decide(sell("s-1", ("A", 1), minutes=-30))
    assert rejected.value.code == "period_closed"
    shop.when(sell("s-1", ("A", 1), minutes=-29))


def test_a_return_restocks_and_is_recorded_against_the_sale(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 3)))
    events = shop.when(give_back("s-1", ("A", 2)))
    assert isinstance(events[0], StockReturned)
    assert isinstance(events[1], SaleReturned)
    assert shop.level("s1", "A").on_hand == 4
    sale = shop.state("sale-s1-s-1")
    assert isinstance(sale, SaleState)
    assert sale.returned == {"A": 2}


def test_a_return_without_restock_leaves_on_hand(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 3)))
    shop.when(give_back("s-1", ("A", 2), restock=False))
    assert shop.level("s1", "A").on_hand == 2


def test_returns_cannot_exceed_the_sale_less_what_was_returned(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 3)))
    shop.when(give_back("s-1", ("A", 2)))
    with pytest.raises(ReturnExceedsSale) as rejected:
        shop.decide(give_back("s-1", ("A", 2)))
    assert rejected.value.errors == [{"sku": "A", "sold": 3, "returned": 2, "requested": 2}]


def test_a_return_of_a_sku_the_sale_did_not_sell_exceeds_it(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 3)))
    with pytest.raises(ReturnExceedsSale):
        shop.decide(give_back("s-1", ("B", 1)))


def test_a_return_against_an_unknown_sale_is_not_found(shop: Scenario) -> None:
    with pytest.raises(SaleNotFound) as rejected:
        shop.decide(give_back("nope", ("A", 1)))
    assert rejected.value.code == "sale_not_found"
