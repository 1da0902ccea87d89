"""What a stock event does to a stock state (rule 3's count anchor lives here)."""

from __future__ import annotations

import bisect
from datetime import datetime
from decimal import Decimal
from typing import assert_never

from msgspec.structs import replace

from inventory.domain.events import (
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockReceived,
    StockReorderPointSet,
    StockReservationExpired,
    StockReservationFulfilled,
    StockReservationReleased,
    StockReserved,
    StockReturned,
    StockSold,
    StockTransferCancelled,
    StockTransferDelivered,
    StockTransferDispatched,
    StockTransferIncoming,
    StockTransferReceived,
    StockTransferWithdrawn,
)
from inventory.domain.state import DETAIL_LIMIT, ZERO, Movement, StockState, is_absorbed

MovementEvent = StockReceived | StockSold | StockReturned | StockAdjusted
ReservationMovement = (
    StockReserved | StockReservationReleased | StockReservationExpired | StockReservationFulfilled
)
TransferMovement = (
    StockTransferDispatched
    | StockTransferIncoming
    | StockTransferReceived
    | StockTransferDelivered
    | StockTransferCancelled
    | StockTransferWithdrawn
)


def evolve_stock(state: StockState, event: StockEvent) -> StockState:
    """The stock state after `event`; never raises (events are facts)."""
    after = evolved(state, event)
    latest = state.latest_at
    if latest is not None and latest >= event.occurred_at:
        return after
    return replace(after, latest_at=event.occurred_at)


def evolved(state: StockState, event: StockEvent) -> StockState:
    """The quantities after `event` (`evolve_stock` also moves `latest_at`)."""
    match event:
        case StockCounted():
            return counted(state, event.occurred_at, event.counted)
        case StockReorderPointSet():
            return replace(state, reorder_min=event.minimum, reorder_max=event.maximum)
        case StockReceived() | StockSold() | StockReturned() | StockAdjusted():
            return moved(state, event.occurred_at, movement_delta(event))
        case (
            StockReserved()
            | StockReservationReleased()
            | StockReservationExpired()
            | StockReservationFulfilled()
        ):
            return reservation_moved(state, event)
        case (
            StockTransferDispatched()
            | StockTransferIncoming()
            | StockTransferReceived()
            | StockTransferDelivered()
            | StockTransferCancelled()
            | StockTransferWithdrawn()
        ):
            return transfer_moved(state, event)
        case _:
            assert_never(event)


def movement_delta(event: MovementEvent) -> Decimal:
    """How much a receipt, sale, return or adjustment moves `on_hand`."""
    match event:
        case StockReceived():
            return event.quantity
        case StockSold():
            return -event.quantity
        case StockReturned():
            return event.quantity if event.restock else ZERO
        case StockAdjusted():
            return event.delta
        case _:
            assert_never(event)


def reservation_moved(state: StockState, event: ReservationMovement) -> StockState:
    """A reservation holds or gives back `reserved`; fulfilling it also sells the units."""
    match event:
        case StockReserved():
            return replace(state, reserved=state.reserved + event.quantity)
        case StockReservationReleased() | StockReservationExpired():
            return replace(state, reserved=state.reserved - event.quantity)
        case StockReservationFulfilled():
            held = replace(state, reserved=state.reserved - event.quantity)
            return moved(held, event.occurred_at, -event.quantity)
        case _:
            assert_never(event)


def transfer_moved(state: StockState, event: TransferMovement) -> StockState:
    """Transfers move `on_hand` at either end and the in-transit quantities in between."""
    quantity = event.quantity
    match event:
        case StockTransferDispatched():
            leaving = replace(state, in_transit_out=state.in_transit_out + quantity)
            return moved(leaving, event.occurred_at, -quantity)
        case StockTransferIncoming():
            return replace(state, in_transit_in=state.in_transit_in + quantity)
        case StockTransferReceived():
            arrived = replace(state, in_transit_in=state.in_transit_in - quantity)
            return moved(arrived, event.occurred_at, quantity)
        case StockTransferDelivered():
            return replace(state, in_transit_out=state.in_transit_out - quantity)
        case StockTransferCancelled():
            back = replace(state, in_transit_out=state.in_transit_out - quantity)
            return moved(back, event.occurred_at, quantity)
        case StockTransferWithdrawn():
            return replace(state, in_transit_in=state.in_transit_in - quantity)
        case _:
            assert_never(event)


def moved(state: StockState, occurred_at: datetime, delta: Decimal) -> StockState:
    """`on_hand` after a delta: absorbed when dated at or before the latest count."""
    if delta == 0 or is_absorbed(state, occurred_at):
        return state
    on_hand = state.on_hand + delta
    if state.settled_through is not None and occurred_at <= state.settled_through:
        # Only counts dated after `settled_through` are accepted, and they never need it.
        return replace(state, on_hand=on_hand)
    detail = list(state.after_count)
    bisect.insort(detail, Movement(occurred_at, delta), key=lambda item: item.occurred_at)
    overflow = len(detail) - DETAIL_LIMIT
    if overflow <= 0:
        return replace(state, on_hand=on_hand, after_count=tuple(detail))
    return replace(
        state,
        on_hand=on_hand,
        after_count=tuple(detail[overflow:]),
        settled_through=detail[overflow - 1].occurred_at,
    )


def counted(state: StockState, occurred_at: datetime, quantity: Decimal) -> StockState:
    """A count becomes the anchor unless an already known count is dated after it."""
    if state.counted_at is not None and occurred_at < state.counted_at:
        return state
    if occurred_at == state.counted_at and state.counted is not None:
        # A tie replaces the anchor's quantity: every delta after it (itemised or settled)
        # is `on_hand - counted`, so this needs no detail at all.
        return replace(state, on_hand=state.on_hand - state.counted + quantity, counted=quantity)
    later = tuple(item for item in state.after_count if item.occurred_at > occurred_at)
    settled = state.settled_through
    return replace(
        state,
        on_hand=quantity + sum((item.delta for item in later), ZERO),
        counted_at=occurred_at,
        counted=quantity,
        after_count=later,
        # Kept only for a count the decider refuses (dated inside the settled stretch).
        settled_through=settled if settled is not None and settled > occurred_at else None,
    )


def count_is_resolvable(state: StockState, occurred_at: datetime) -> bool:
    """Whether a count dated `occurred_at` can be anchored exactly with what state keeps."""
    settled = state.settled_through
    if settled is None or occurred_at >= settled:
        return True
    return state.counted_at is not None and occurred_at <= state.counted_at


ON_HAND_EVENTS = (
    StockReceived,
    StockSold,
    StockReturned,
    StockAdjusted,
    StockReservationFulfilled,
    StockTransferDispatched,
    StockTransferReceived,
    StockTransferCancelled,
)


def event_is_absorbed(state: StockState, event: StockEvent) -> bool:
    """Whether the ledger marks `event`, about to be evolved onto `state`, as absorbed.

    A delta is absorbed when dated at or before the latest count; a count when dated
    strictly before it (a count dated at the same moment becomes the new anchor).
    """
    if isinstance(event, StockCounted):
        return state.counted_at is not None and event.occurred_at < state.counted_at
    return isinstance(event, ON_HAND_EVENTS) and is_absorbed(state, event.occurred_at)
