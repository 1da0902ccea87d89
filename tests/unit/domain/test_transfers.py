"""Transfers leave the source on dispatch, arrive in parts, and a cancel returns the rest."""

from __future__ import annotations

import pytest

from inventory.domain.commands import CancelTransfer, DispatchTransfer, ReceiveTransfer
from inventory.domain.decider import StreamNotInContext, decide, document_stream, streams_of
from inventory.domain.errors import (
    DuplicateTransfer,
    InsufficientStock,
    PeriodClosed,
    TransferNotFound,
    TransferNotOpen,
    ValidationRejected,
)
from inventory.domain.events import StorePeriodClosed
from tests.unit.domain.scenario import NOW, Scenario, lines, product, receive, store


@pytest.fixture
def shops() -> Scenario:
    """Stores s1 and s2 (deny); s1 holds 10 A and 4 B."""
    scenario = Scenario(store("s1"), store("s2"), product("A"), product("B"))
    scenario.when(receive(("A", 10), ("B", 4), minutes=-60))
    return scenario


def dispatch(transfer_id: str, *pairs: tuple[str, int]) -> DispatchTransfer:
    """A transfer from s1 to s2."""
    return DispatchTransfer(
        transfer_id=transfer_id,
        from_store="s1",
        to_store="s2",
        lines=lines(*pairs),
        occurred_at=NOW,
        now=NOW,
    )


def arrive(transfer_id: str, *pairs: tuple[str, int]) -> ReceiveTransfer:
    """A receipt of part of a transfer."""
    return ReceiveTransfer(transfer_id=transfer_id, lines=lines(*pairs), occurred_at=NOW, now=NOW)


def cancel(transfer_id: str) -> CancelTransfer:
    """Cancel a transfer."""
    return CancelTransfer(transfer_id=transfer_id, occurred_at=NOW, now=NOW)


def quantities(shops: Scenario, store_id: str, sku: str) -> tuple[int, ...]:
    """(on_hand, available, in_transit_in, in_transit_out) of one item."""
    level = shops.level(store_id, sku)
    values = (level.on_hand, level.available, level.in_transit_in, level.in_transit_out)
    return tuple(int(value) for value in values)


def test_a_dispatch_moves_stock_into_transit_at_both_ends(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    assert quantities(shops, "s1", "A") == (4, 4, 0, 6)
    assert quantities(shops, "s2", "A") == (0, 0, 6, 0)


def test_a_dispatch_beyond_available_at_the_source_is_refused(shops: Scenario) -> None:
    with pytest.raises(InsufficientStock) as rejected:
        shops.decide(dispatch("t-1", ("A", 6), ("B", 5)))
    assert rejected.value.errors == [{"sku": "B", "available": 4, "requested": 5}]


def test_a_transfer_id_is_used_once(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 1)))
    with pytest.raises(DuplicateTransfer):
        shops.decide(dispatch("t-1", ("A", 1)))


def test_a_transfer_needs_two_different_stores(shops: Scenario) -> None:
    command = DispatchTransfer(
        transfer_id="t-1",
        from_store="s1",
        to_store="s1",
        lines=lines(("A", 1)),
        occurred_at=NOW,
        now=NOW,
    )
    with pytest.raises(ValidationRejected):
        shops.decide(command)


def test_dispatched_half_received_then_cancelled_leaves_both_stores_right(
    shops: Scenario,
) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    shops.when(arrive("t-1", ("A", 3)))
    assert quantities(shops, "s1", "A") == (4, 4, 0, 3)
    assert quantities(shops, "s2", "A") == (3, 3, 3, 0)
    shops.when(cancel("t-1"))
    assert quantities(shops, "s1", "A") == (7, 7, 0, 0)
    assert quantities(shops, "s2", "A") == (3, 3, 0, 0)


def test_receiving_everything_closes_the_transfer(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6), ("B", 2)))
    shops.when(arrive("t-1", ("A", 6)))
    shops.when(arrive("t-1", ("B", 2)))
    with pytest.raises(TransferNotOpen) as rejected:
        shops.decide(cancel("t-1"))
    assert rejected.value.code == "transfer_not_open"
    assert quantities(shops, "s2", "A") == (6, 6, 0, 0)
    assert quantities(shops, "s1", "B") == (2, 2, 0, 0)


def test_receiving_more_than_outstanding_is_refused(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    shops.when(arrive("t-1", ("A", 4)))
    with pytest.raises(ValidationRejected) as rejected:
        shops.decide(arrive("t-1", ("A", 3)))
    assert rejected.value.errors[0]["outstanding"] == 2


def test_receiving_a_sku_that_was_not_dispatched_is_refused(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    with pytest.raises(ValidationRejected):
        shops.decide(arrive("t-1", ("B", 1)))


def test_a_cancelled_transfer_cannot_be_received(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    shops.when(cancel("t-1"))
    with pytest.raises(TransferNotOpen):
        shops.decide(arrive("t-1", ("A", 1)))


def test_an_unknown_transfer_is_not_found(shops: Scenario) -> None:
    with pytest.raises(TransferNotFound) as rejected:
        shops.decide(arrive("t-404", ("A", 1)))
    assert rejected.value.code == "transfer_not_found"


def test_a_receipt_dated_in_the_destinations_closed_period_is_refused(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    shops.given(StorePeriodClosed(store_id="s2", until=NOW, occurred_at=NOW))
    with pytest.raises(PeriodClosed):
        shops.decide(arrive("t-1", ("A", 1)))


@pytest.mark.parametrize("closed", ["s1", "s2"])
def test_a_receipt_or_cancel_dated_in_either_stores_closed_period_is_refused(
    shops: Scenario, closed: str
) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    shops.given(StorePeriodClosed(store_id=closed, until=NOW, occurred_at=NOW))
    with pytest.raises(PeriodClosed):
        shops.decide(arrive("t-1", ("A", 1)))
    with pytest.raises(PeriodClosed):
        shops.decide(cancel("t-1"))


def test_a_receipt_names_the_stock_streams_of_both_stores(shops: Scenario) -> None:
    shops.when(dispatch("t-1", ("A", 6)))
    command = arrive("t-1", ("A", 1))
    document = document_stream(command)
    assert document == "transfer-t-1"
    streams = streams_of(command, shops.state(document))
    assert streams.write == {"transfer-t-1", "stock-s1-A", "stock-s2-A"}
    assert streams.read == {"store-s1", "store-s2", "product-A"}


def test_a_transfer_that_appeared_after_the_unlocked_read_asks_for_a_retry(
    shops: Scenario,
) -> None:
    command = arrive("t-1", ("A", 1))
    context = shops.context_for(command)
    shops.when(dispatch("t-1", ("A", 6)))
    stale = type(context)({**context.heads, "transfer-t-1": shops.head("transfer-t-1")})
    with pytest.raises(StreamNotInContext):
        decide(command, stale)
