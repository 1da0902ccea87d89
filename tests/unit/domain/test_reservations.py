"""Reservations hold `available` until released, expired or fulfilled into a sale."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from inventory.domain.commands import (
    ExpireReservation,
    FulfilReservation,
    RecordReturn,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.errors import (
    DuplicateReservation,
    DuplicateSale,
    InsufficientStock,
    ReservationNotActive,
    ReservationNotFound,
    ValidationRejected,
)
from inventory.domain.state import ReservationState
from tests.unit.domain.scenario import NOW, Scenario, at, lines, product, receive, sell, store


@pytest.fixture
def shop() -> Scenario:
    """Store s1 (deny) with 5 A and 5 B."""
    scenario = Scenario(store("s1"), product("A"), product("B"))
    scenario.when(receive(("A", 5), ("B", 5), minutes=-60))
    return scenario


def reserve(
    reservation_id: str, *pairs: tuple[str, int], expires_at: datetime | None = None
) -> ReserveStock:
    """A reservation in s1."""
    return ReserveStock(
        store_id="s1",
        reservation_id=reservation_id,
        lines=lines(*pairs),
        expires_at=expires_at,
        occurred_at=NOW,
        now=NOW,
    )


def release(reservation_id: str) -> ReleaseReservation:
    """Release a reservation in s1."""
    return ReleaseReservation(
        store_id="s1", reservation_id=reservation_id, occurred_at=NOW, now=NOW
    )


def expire(reservation_id: str, now: datetime) -> ExpireReservation:
    """The worker's expiry of a reservation in s1, sent at `now`."""
    return ExpireReservation(store_id="s1", reservation_id=reservation_id, occurred_at=now, now=now)


def fulfil(reservation_id: str, sale_id: str) -> FulfilReservation:
    """Fulfil a reservation in s1 as a sale."""
    return FulfilReservation(
        store_id="s1", reservation_id=reservation_id, sale_id=sale_id, occurred_at=NOW, now=NOW
    )


def test_a_reservation_holds_available_but_not_on_hand(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2)))
    level = shop.level("s1", "A")
    assert (level.on_hand, level.reserved, level.available) == (Decimal(5), Decimal(2), Decimal(3))


def test_a_sale_cannot_take_what_is_reserved(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 4)))
    with pytest.raises(InsufficientStock) as rejected:
        shop.decide(sell("s-1", ("A", 2)))
    assert rejected.value.errors == [{"sku": "A", "available": 1, "requested": 2}]


def test_a_reservation_beyond_available_is_refused(shop: Scenario) -> None:
    with pytest.raises(InsufficientStock):
        shop.decide(reserve("r-1", ("A", 6)))


def test_a_reservation_id_is_used_once(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 1)))
    with pytest.raises(DuplicateReservation):
        shop.decide(reserve("r-1", ("B", 1)))


def test_a_reservation_must_expire_in_the_future(shop: Scenario) -> None:
    with pytest.raises(ValidationRejected):
        shop.decide(reserve("r-1", ("A", 1), expires_at=at(-1)))


def test_releasing_a_reservation_gives_available_back(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2), ("B", 1)))
    shop.when(release("r-1"))
    assert shop.level("s1", "A").available == 5
    assert shop.level("s1", "B").available == 5


def test_a_released_reservation_is_not_active_any_more(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2)))
    shop.when(release("r-1"))
    with pytest.raises(ReservationNotActive) as rejected:
        shop.decide(release("r-1"))
    assert rejected.value.code == "reservation_not_active"


def test_an_unknown_reservation_is_not_found(shop: Scenario) -> None:
    with pytest.raises(ReservationNotFound) as rejected:
        shop.decide(release("r-404"))
    assert rejected.value.code == "reservation_not_found"


def test_a_reservation_expires_once_its_time_has_passed(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2), expires_at=at(30)))
    with pytest.raises(ValidationRejected):
        shop.decide(expire("r-1", at(29)))
    shop.when(expire("r-1", at(30)))
    assert shop.level("s1", "A").available == 5
    reservation = shop.state("reservation-s1-r-1")
    assert isinstance(reservation, ReservationState)
    assert reservation.status == "expired"


def test_a_reservation_without_expiry_never_expires(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2)))
    with pytest.raises(ValidationRejected):
        shop.decide(expire("r-1", at(60 * 24 * 365)))


def test_fulfilling_a_reservation_sells_it_under_the_given_sale_id(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2)))
    shop.when(fulfil("r-1", "s-9"))
    level = shop.level("s1", "A")
    assert (level.on_hand, level.reserved, level.available) == (Decimal(3), Decimal(0), Decimal(3))
    shop.when(
        RecordReturn(store_id="s1", sale_id="s-9", lines=lines(("A", 2)), occurred_at=NOW, now=NOW)
    )
    assert shop.level("s1", "A").on_hand == 5


def test_a_fulfilled_reservation_cannot_be_released(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2)))
    shop.when(fulfil("r-1", "s-9"))
    with pytest.raises(ReservationNotActive):
        shop.decide(release("r-1"))


def test_fulfilling_into_a_used_sale_id_is_a_duplicate_sale(shop: Scenario) -> None:
    shop.when(sell("s-9", ("B", 1)))
    shop.when(reserve("r-1", ("A", 2)))
    with pytest.raises(DuplicateSale):
        shop.decide(fulfil("r-1", "s-9"))


def test_a_reservation_past_its_expiry_cannot_be_fulfilled(shop: Scenario) -> None:
    shop.when(reserve("r-1", ("A", 2), expires_at=at(30)))
    late = FulfilReservation(
        store_id="s1", reservation_id="r-1", sale_id="s-9", occurred_at=at(31), now=at(31)
    )
    with pytest.raises(ReservationNotActive):
        shop.decide(late)
