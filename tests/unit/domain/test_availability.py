"""Availability at business time (rule 4) and returns dated after their sale (rule 10)."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from inventory.domain.authority import Authority
from inventory.domain.commands import (
    DispatchTransfer,
    FulfilReservation,
    RecordReturn,
    RecordSale,
    ReserveStock,
)
from inventory.domain.errors import (
    InsufficientStock,
    ReturnBeforeSale,
    ReturnNeedsManager,
    SaleNotFound,
    ValidationRejected,
)
from inventory.domain.events import SaleRecorded, StockSold
from inventory.domain.state import SaleState
from tests.unit.domain.scenario import (
    NOW,
    Scenario,
    at,
    count,
    lines,
    product,
    receive,
    sell,
    store,
)

CLERK = Authority(role="clerk", api_key=False)
MANAGER = Authority(role="manager", api_key=False)


@pytest.fixture
def shop() -> Scenario:
    """Store s1 (deny) and s2: 7 A received two hours ago in s1, counted an hour ago."""
    scenario = Scenario(store("s1"), store("s2"), product("A"))
    scenario.when(receive(("A", 7), minutes=-120))
    scenario.when(count(("A", 7), minutes=-60))
    return scenario


def give_back(
    sale_id: str, quantity: int, minutes: float = 0, authority: Authority = CLERK
) -> RecordReturn:
    """A return of `quantity` A against a sale in s1, by `authority`."""
    return RecordReturn(
        store_id="s1",
        sale_id=sale_id,
        lines=lines(("A", quantity)),
        occurred_at=at(minutes),
        now=NOW,
        authority=authority,
    )


def test_a_sale_dated_before_the_latest_count_is_checked_at_its_own_time(shop: Scenario) -> None:
    with pytest.raises(InsufficientStock) as refused:
        shop.decide(sell("s-1", ("A", 50), minutes=-90))
    assert refused.value.errors == [
        {"sku": "A", "available": 7, "requested": 50, "as_of": at(-90).isoformat()}
    ]
    with pytest.raises(SaleNotFound):
        shop.decide(give_back("s-1", 50))
    assert shop.level("s1", "A").on_hand == 7


def test_a_backdated_sale_is_checked_at_every_later_time_up_to_the_count(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 5), minutes=-80))
    with pytest.raises(InsufficientStock) as refused:
        shop.decide(sell("s-2", ("A", 5), minutes=-100))
    assert refused.value.errors == [
        {"sku": "A", "available": 2, "requested": 5, "as_of": at(-80).isoformat()}
    ]
    shop.when(sell("s-3", ("A", 2), minutes=-100))


def test_a_count_dated_at_the_same_moment_does_not_spare_a_sale_its_check(
    shop: Scenario,
) -> None:
    with pytest.raises(InsufficientStock):
        shop.decide(sell("s-1", ("A", 8), minutes=-60))
    shop.when(sell("s-1", ("A", 7), minutes=-60))
    assert shop.level("s1", "A").on_hand == 7


def test_a_sale_that_stacks_must_also_be_covered_now(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 6), minutes=-10))
    with pytest.raises(InsufficientStock) as refused:
        shop.decide(sell("s-2", ("A", 3), minutes=-30))
    assert refused.value.errors == [{"sku": "A", "available": 1, "requested": 3}]


def test_a_hold_placed_after_a_backdated_sale_does_not_count_against_it(shop: Scenario) -> None:
    shop.when(reserve("r-1", 7, minutes=-5))
    with pytest.raises(InsufficientStock):
        shop.decide(sell("s-1", ("A", 1)))
    shop.when(sell("s-1", ("A", 7), minutes=-90))
    assert shop.level("s1", "A").on_hand == 7


def test_a_backdated_reservation_and_dispatch_are_checked_at_their_time(shop: Scenario) -> None:
    with pytest.raises(InsufficientStock):
        shop.decide(reserve("r-1", 8, minutes=-90))
    with pytest.raises(InsufficientStock):
        shop.decide(
            DispatchTransfer(
                transfer_id="t-1",
                from_store="s1",
                to_store="s2",
                lines=lines(("A", 8)),
                occurred_at=at(-90),
                now=NOW,
            )
        )


def test_a_return_dated_before_its_sale_is_refused(shop: Scenario) -> None:
    shop.when(sell("s-1", ("A", 2), minutes=-30))
    with pytest.raises(ReturnBeforeSale) as refused:
        shop.decide(give_back("s-1", 2, minutes=-31))
    assert refused.value.code == "return_before_sale"
    shop.when(give_back("s-1", 2, minutes=-30))


def test_an_offline_oversale_is_recorded_with_its_shortfall_and_returned_by_a_manager_only(
    shop: Scenario,
) -> None:
    events = shop.when(sell("s-1", ("A", 50), minutes=-90, offline=True))
    sold, recorded = events
    assert isinstance(sold, StockSold) and sold.shortfall == Decimal(43)
    assert isinstance(recorded, SaleRecorded) and recorded.oversold
    sale = shop.state("sale-s1-s-1")
    assert isinstance(sale, SaleState) and sale.oversold
    with pytest.raises(ReturnNeedsManager) as refused:
        shop.decide(give_back("s-1", 50))
    assert refused.value.code == "return_needs_manager"
    shop.when(give_back("s-1", 50, authority=MANAGER))


def test_a_covered_offline_sale_records_no_shortfall(shop: Scenario) -> None:
    sold, recorded = shop.when(sell("s-1", ("A", 7), minutes=-90, offline=True))
    assert isinstance(sold, StockSold) and sold.shortfall == 0
    assert isinstance(recorded, SaleRecorded) and not recorded.oversold
    shop.when(give_back("s-1", 7))


def reserve(reservation_id: str, quantity: int, minutes: float = 0) -> ReserveStock:
    """A hold of `quantity` A in s1."""
    return ReserveStock(
        store_id="s1",
        reservation_id=reservation_id,
        lines=lines(("A", quantity)),
        occurred_at=at(minutes),
        now=NOW,
    )


def test_a_fulfilment_dated_before_the_units_arrived_is_refused(shop: Scenario) -> None:
    shop.when(reserve("r-1", 5))
    with pytest.raises(InsufficientStock) as refused:
        shop.decide(fulfil("r-1", "s-1", minutes=-150))
    assert refused.value.errors == [
        {"sku": "A", "available": 0, "requested": 5, "as_of": at(-150).isoformat()}
    ]
    shop.when(fulfil("r-1", "s-1", minutes=-5))
    assert shop.level("s1", "A").on_hand == 2


def fulfil(reservation_id: str, sale_id: str, minutes: float = 0) -> FulfilReservation:
    """Turn a hold in s1 into a sale."""
    return FulfilReservation(
        store_id="s1",
        reservation_id=reservation_id,
        sale_id=sale_id,
        occurred_at=at(minutes),
        now=NOW,
    )


def test_a_time_without_an_offset_needs_no_history_and_is_refused_as_invalid(
    shop: Scenario,
) -> None:
    naive = sell("s-1", ("A", 1), minutes=-90)
    naive = RecordSale(
        **{**msgspec.structs.asdict(naive), "occurred_at": at(-90).replace(tzinfo=None)}
    )
    with pytest.raises(ValidationRejected):
        shop.decide(naive)
