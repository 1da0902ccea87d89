"""`evolve`: the one definition of what each event does to its stream's state."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar, assert_never

from msgspec.structs import replace

from inventory.domain.events import (
    Event,
    Line,
    ProductDiscontinued,
    ProductEvent,
    ProductRegistered,
    ProductUpdated,
    ReservationEvent,
    ReservationExpired,
    ReservationFulfilled,
    ReservationPlaced,
    ReservationReleased,
    SaleEvent,
    SaleRecorded,
    SaleReturned,
    StockFact,
    StoreEvent,
    StoreOpened,
    StorePeriodClosed,
    StoreUpdated,
    TransferCancelled,
    TransferDispatched,
    TransferEvent,
    TransferReceived,
)
from inventory.domain.state import (
    ZERO,
    ProductState,
    ReservationState,
    SaleState,
    State,
    StockState,
    StoreState,
    TransferState,
)
from inventory.domain.stock_evolution import evolve_stock

S = TypeVar("S", bound=State)
T = TypeVar("T")


def evolve(state: S, event: Event) -> S:
    """The state after `event`; an event of another kind of stream leaves it unchanged."""
    new: State
    match state:
        case StoreState():
            new = evolve_store(state, event) if isinstance(event, StoreEvent) else state
        case ProductState():
            new = evolve_product(state, event) if isinstance(event, ProductEvent) else state
        case StockState():
            new = evolve_stock(state, event) if isinstance(event, StockFact) else state
        case SaleState():
            new = evolve_sale(state, event) if isinstance(event, SaleEvent) else state
        case TransferState():
            new = evolve_transfer(state, event) if isinstance(event, TransferEvent) else state
        case ReservationState():
            new = evolve_reservation(state, event) if isinstance(event, ReservationEvent) else state
        case _:
            assert_never(state)
    assert isinstance(new, type(state))
    return new


def fold(state: S, events: Iterable[Event]) -> S:
    """The state after every event in order."""
    for event in events:
        state = evolve(state, event)
    return state


def evolve_store(state: StoreState, event: StoreEvent) -> StoreState:
    """A store opens, changes details, or closes its books further."""
    match event:
        case StoreOpened():
            return StoreState(
                exists=True,
                store_id=event.store_id,
                name=event.name,
                location=event.location,
                timezone=event.timezone,
                negative_stock=event.negative_stock,
                closed_until=state.closed_until,
                backdate_days=event.backdate_days,
            )
        case StoreUpdated():
            return replace(
                state,
                name=kept(event.name, state.name),
                location=kept(event.location, state.location),
                timezone=kept(event.timezone, state.timezone),
                negative_stock=kept(event.negative_stock, state.negative_stock),
                backdate_days=kept(event.backdate_days, state.backdate_days),
            )
        case StorePeriodClosed():
            closed = state.closed_until
            until = event.until if closed is None else max(closed, event.until)
            return replace(state, closed_until=until)
        case _:
            assert_never(event)


def evolve_product(state: ProductState, event: ProductEvent) -> ProductState:
    """A product is registered, changes details, or is discontinued."""
    match event:
        case ProductRegistered():
            return ProductState(
                exists=True,
                sku=event.sku,
                name=event.name,
                description=event.description,
                barcode=event.barcode,
                unit=event.unit,
                decimals=event.decimals,
                category=event.category,
            )
        case ProductUpdated():
            return replace(
                state,
                name=kept(event.name, state.name),
                description=kept(event.description, state.description),
                barcode=kept(event.barcode, state.barcode),
                category=kept(event.category, state.category),
            )
        case ProductDiscontinued():
            return replace(state, discontinued=True)
        case _:
            assert_never(event)


def kept(new: T | None, current: T) -> T:
    """`new` when given, else `current`: `None` in an update event means "unchanged"."""
    return current if new is None else new


def added(totals: dict[str, Decimal], lines: Iterable[Line]) -> dict[str, Decimal]:
    """New per-SKU totals with `lines` added (the input is left as it was)."""
    result = dict(totals)
    for line in lines:
        result[line.sku] = result.get(line.sku, ZERO) + line.quantity
    return result


def evolve_sale(state: SaleState, event: SaleEvent) -> SaleState:
    """A sale is recorded once, then returned in parts."""
    match event:
        case SaleRecorded():
            return SaleState(
                exists=True,
                store_id=event.store_id,
                sale_id=event.sale_id,
                occurred_at=event.occurred_at,
                sold=added(state.sold, event.lines),
                returned=state.returned,
                oversold=state.oversold or event.oversold,
            )
        case SaleReturned():
            return replace(state, returned=added(state.returned, event.lines))
        case _:
            assert_never(event)


def evolve_transfer(state: TransferState, event: TransferEvent) -> TransferState:
    """A transfer is dispatched, received in parts, closed when all arrived, or cancelled."""
    match event:
        case TransferDispatched():
            return TransferState(
                exists=True,
                transfer_id=event.transfer_id,
                from_store=event.from_store,
                to_store=event.to_store,
                dispatched=added({}, event.lines),
                status="open",
            )
        case TransferReceived():
            received = added(state.received, event.lines)
            complete = all(
                received.get(sku, ZERO) >= quantity for sku, quantity in state.dispatched.items()
            )
            status = "received" if complete and state.status == "open" else state.status
            return replace(state, received=received, status=status)
        case TransferCancelled():
            return replace(state, status="cancelled")
        case _:
            assert_never(event)


def evolve_reservation(state: ReservationState, event: ReservationEvent) -> ReservationState:
    """A reservation is placed, then released, expired or fulfilled once."""
    match event:
        case ReservationPlaced():
            return ReservationState(
                exists=True,
                store_id=event.store_id,
                reservation_id=event.reservation_id,
                lines=added({}, event.lines),
                status="active",
                expires_at=event.expires_at,
            )
        case ReservationReleased():
            return replace(state, status="released")
        case ReservationExpired():
            return replace(state, status="expired")
        case ReservationFulfilled():
            return replace(state, status="fulfilled", sale_id=event.sale_id)
        case _:
            assert_never(event)
