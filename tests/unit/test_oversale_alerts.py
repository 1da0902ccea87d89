"""A sale that sold more than was available at its time opens `negative_stock` naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from inventory.domain.events import StockCounted, StockEvent, StockReceived, StockSold
from inventory.domain.state import StockState
from inventory.domain.stock_evolution import event_is_absorbed, evolve_stock
from inventory.readmodels.alerts import AlertBook
from inventory.readmodels.projection import ReplicaEvent

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def observe_all(book: AlertBook, events: list[StockEvent]) -> None:
    """Fold `events` as the stock projector does, observing each."""
    state = StockState()
    for seq, event in enumerate(events, start=1):
        replica = ReplicaEvent(
            seq, seq, "stock-s1-A", seq, "stock", "s1", "A", b"", b"", event.occurred_at, NOW, "s1"
        )
        after = evolve_stock(state, event)
        book.observe(replica, event, state, after, absorbed=event_is_absorbed(state, event))
        state = after


def received(quantity: int, minutes: int) -> StockReceived:
    return StockReceived(
        store_id="s1", sku="A", occurred_at=at(minutes), quantity=Decimal(quantity)
    )


def counted(quantity: int, minutes: int) -> StockCounted:
    return StockCounted(store_id="s1", sku="A", occurred_at=at(minutes), counted=Decimal(quantity))


def oversold(minutes: int) -> StockSold:
    return StockSold(
        store_id="s1",
        sku="A",
        occurred_at=at(minutes),
        quantity=Decimal(50),
        sale_id="s-off",
        offline=True,
        shortfall=Decimal(43),
    )


def negative(book: AlertBook) -> list[tuple[int, int | None, dict[str, object]]]:
    return [(a.opened_seq, a.closed_seq, a.details) for a in book.new if a.kind == "negative_stock"]


def test_an_absorbed_oversale_opens_negative_stock_naming_the_sale_until_a_recount() -> None:
    book = AlertBook({})
    observe_all(book, [received(7, -120), counted(7, -60), oversold(-90), received(1, 0)])
    assert negative(book) == [
        (3, None, {"on_hand": Decimal(7), "sale_id": "s-off", "shortfall": Decimal(43)})
    ]


def test_a_recount_closes_the_oversale_alert() -> None:
    book = AlertBook({})
    observe_all(book, [received(7, -120), counted(7, -60), oversold(-90), counted(8, 1)])
    [(opened, closed, details)] = negative(book)
    assert (opened, closed, details["sale_id"]) == (3, 4, "s-off")


def test_a_late_count_does_not_close_it() -> None:
    book = AlertBook({})
    observe_all(book, [received(7, -120), counted(7, -60), oversold(-90), counted(3, -70)])
    assert [(opened, closed) for opened, closed, _ in negative(book)] == [(3, None)]
