"""Given events, when a command, then events or a rejection: the decider's test harness."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from inventory.domain.availability import history_of
from inventory.domain.commands import (
    AdjustmentLine,
    AdjustStock,
    Command,
    CountLine,
    CountStock,
    ReceiptLine,
    ReceiveStock,
    RecordSale,
)
from inventory.domain.decider import (
    Change,
    Context,
    Head,
    decide,
    document_stream,
    fold,
    streams_of,
)
from inventory.domain.events import (
    AdjustmentReason,
    DocumentEvent,
    Event,
    Line,
    ProductEvent,
    ProductRegistered,
    ReservationEvent,
    SaleEvent,
    StockFact,
    StoreEvent,
    StoreOpened,
    TransferEvent,
)
from inventory.domain.state import Level, State, StockState, initial_state, level_of
from inventory.domain.streams import (
    product_stream,
    reservation_stream,
    sale_stream,
    stock_stream,
    store_stream,
    transfer_stream,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """A business time `minutes` after (or before, when negative) NOW."""
    return NOW + timedelta(minutes=minutes)


def lines(*pairs: tuple[str, int | str]) -> tuple[Line, ...]:
    """`("A", 2), ("B", "1.5")` as document lines."""
    return tuple(Line(sku, Decimal(quantity)) for sku, quantity in pairs)


def stream_of(event: Event) -> str:
    """The stream an event belongs to (what the service would have appended it to)."""
    if isinstance(event, StockFact):
        return stock_stream(event.store_id, event.sku)
    if isinstance(event, StoreEvent):
        return store_stream(event.store_id)
    if isinstance(event, ProductEvent):
        return product_stream(event.sku)
    return document_stream_of(event)


def document_stream_of(event: DocumentEvent) -> str:
    """The document stream of a sale, transfer or reservation event."""
    if isinstance(event, SaleEvent):
        return sale_stream(event.store_id, event.sale_id)
    if isinstance(event, TransferEvent):
        return transfer_stream(event.transfer_id)
    assert isinstance(event, ReservationEvent)
    return reservation_stream(event.store_id, event.reservation_id)


def store(store_id: str = "s1", negative_stock: str = "deny") -> StoreOpened:
    """A store opened with a policy."""
    assert negative_stock in ("deny", "allow")
    return StoreOpened(
        store_id=store_id,
        name=store_id.upper(),
        negative_stock="deny" if negative_stock == "deny" else "allow",
    )


def product(sku: str = "A", decimals: int = 0) -> ProductRegistered:
    """A registered product."""
    return ProductRegistered(sku=sku, name=f"product {sku}", decimals=decimals)


class Scenario:
    """An event history per stream that commands are decided against and appended to."""

    def __init__(self, *given: Event) -> None:
        self.history: dict[str, list[Event]] = {}
        self.given(*given)

    def given(self, *events: Event) -> Scenario:
        """Append facts as they are, without deciding."""
        for event in events:
            self.history.setdefault(stream_of(event), []).append(event)
        return self

    def context_for(self, command: Command) -> Context:
        """The context a service would build: a head for every stream of the command."""
        document = document_stream(command)
        state = None if document is None else self.state(document)
        context = Context({stream: self.head(stream) for stream in streams_of(command, state).all})
        # The histories the service loads from the primary, out of the events kept here.
        histories = {
            need.stream: history_of(need, self.history[need.stream])  # type: ignore[arg-type]
            for need in context.history_needs(command)
        }
        return Context(context.heads, histories)

    def head(self, stream: str) -> Head:
        """A stream's version and its events folded."""
        events = self.history.get(stream, [])
        return Head(len(events), fold(initial_state(stream), events))

    def state(self, stream: str) -> State:
        """A stream's state."""
        return self.head(stream).state

    def decide(self, command: Command) -> list[Change]:
        """The changes of `command`, without appending them."""
        return decide(command, self.context_for(command))

    def when(self, command: Command) -> list[Event]:
        """Decide `command` and append its events: what the service would do."""
        changes = self.decide(command)
        for change in changes:
            self.history.setdefault(change.stream, []).append(change.event)
        return [change.event for change in changes]

    def stock(self, store_id: str, sku: str) -> StockState:
        """The stock state of one item at one store."""
        state = self.head(stock_stream(store_id, sku)).state
        assert isinstance(state, StockState)
        return state

    def level(self, store_id: str, sku: str) -> Level:
        """The public level of one item at one store."""
        return level_of(self.stock(store_id, sku))

    def events(self, stream: str) -> Iterable[Event]:
        """A stream's events."""
        return list(self.history.get(stream, []))


def receive(
    *pairs: tuple[str, int | str], minutes: float = 0, store_id: str = "s1"
) -> ReceiveStock:
    """A receipt of `pairs` at `minutes` after NOW."""
    return ReceiveStock(
        store_id=store_id,
        lines=tuple(ReceiptLine(sku=sku, quantity=Decimal(quantity)) for sku, quantity in pairs),
        occurred_at=at(minutes),
        now=NOW,
    )


def sell(
    sale_id: str,
    *pairs: tuple[str, int | str],
    minutes: float = 0,
    offline: bool = False,
    store_id: str = "s1",
) -> RecordSale:
    """A sale of `pairs` at `minutes` after NOW."""
    return RecordSale(
        store_id=store_id,
        sale_id=sale_id,
        lines=lines(*pairs),
        offline=offline,
        occurred_at=at(minutes),
        now=NOW,
    )


def adjust(
    sku: str, delta: int | str, minutes: float = 0, reason: AdjustmentReason = "correction"
) -> AdjustStock:
    """An adjustment of one SKU in store s1."""
    return AdjustStock(
        store_id="s1",
        lines=(AdjustmentLine(sku=sku, delta=Decimal(delta), reason=reason),),
        occurred_at=at(minutes),
        now=NOW,
    )


def count(
    *pairs: tuple[str, int | str], minutes: float = 0, expected_version: int | None = None
) -> CountStock:
    """A count of `pairs` in store s1 at `minutes` after NOW."""
    return CountStock(
        store_id="s1",
        lines=tuple(
            CountLine(sku=sku, counted=Decimal(quantity), expected_version=expected_version)
            for sku, quantity in pairs
        ),
        occurred_at=at(minutes),
        now=NOW,
    )
