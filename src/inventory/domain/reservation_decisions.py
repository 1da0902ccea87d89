"""Decisions on reservations: hold `available`, then release, expire or fulfil once."""

from __future__ import annotations

from datetime import datetime

from inventory.domain.admission import admitted, document_change, stock_change
from inventory.domain.commands import (
    ExpireReservation,
    FulfilReservation,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.context import Change, Context
from inventory.domain.errors import (
    DuplicateReservation,
    ReservationNotActive,
    ReservationNotFound,
    ValidationRejected,
)
from inventory.domain.events import (
    Line,
    ReservationExpired,
    ReservationFulfilled,
    ReservationPlaced,
    ReservationReleased,
    SaleRecorded,
    StockReservationExpired,
    StockReservationFulfilled,
    StockReservationReleased,
    StockReserved,
)
from inventory.domain.rules import (
    Problems,
    check_available,
    check_period,
    check_window,
    open_store,
    reject_if,
    time_problems,
)
from inventory.domain.state import ReservationState
from inventory.domain.stock_decisions import line_amounts, reject_duplicate_sale
from inventory.domain.streams import reservation_stream, sale_stream
from inventory.domain.window import representable_problem


def reserve_stock(command: ReserveStock, context: Context) -> list[Change]:
    """Hold lines for a customer; refused under `deny` when `available` is short."""
    expires_at = command.expires_at
    reject_if(expiry_problems(expires_at, command.now))
    store, _ = admitted(context, command.store_id, command, line_amounts(command.lines))
    stream = reservation_stream(command.store_id, command.reservation_id)
    if context.reservation(command.store_id, command.reservation_id).exists:
        raise DuplicateReservation(
            f"reservation {command.reservation_id!r} already exists",
            [{"reservation_id": command.reservation_id}],
        )
    changes = [
        stock_change(
            StockReserved(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                reservation_id=command.reservation_id,
                expires_at=expires_at,
            )
        )
        for line in command.lines
    ]
    if store.negative_stock == "deny":
        check_available(context, changes)
    placed = ReservationPlaced(
        store_id=command.store_id,
        reservation_id=command.reservation_id,
        lines=command.lines,
        occurred_at=command.occurred_at,
        expires_at=expires_at,
    )
    return [
        *changes,
        document_change(stream, placed, command.store_id, command.occurred_at, new=True),
    ]


def expiry_problems(expires_at: datetime | None, now: datetime) -> Problems:
    """`expires_at`, when given, must carry an offset, lie in the future and be representable
    in every zone (the worker and the read side compare it)."""
    if expires_at is None:
        return []
    if expires_at.tzinfo is None or expires_at.utcoffset() is None:
        return [{"field": "expires_at", "message": "must carry a UTC offset"}]
    problem = representable_problem(expires_at, "expires_at")
    if problem is not None:
        return [problem]
    if expires_at <= now:
        return [{"field": "expires_at", "message": "must be in the future"}]
    return []


EndCommand = ReleaseReservation | ExpireReservation | FulfilReservation


def active_reservation(command: EndCommand, context: Context) -> ReservationState:
    """The reservation a command ends, once its time, store, status and period are checked."""
    reject_if(time_problems(command.occurred_at))
    store = open_store(context, command.store_id)
    check_window(store, command.occurred_at, command.now, command.authority)
    reservation = context.reservation(command.store_id, command.reservation_id)
    if not reservation.exists:
        raise ReservationNotFound(
            f"no reservation {command.reservation_id!r} in store {command.store_id!r}",
            [{"reservation_id": command.reservation_id}],
        )
    if reservation.status != "active":
        raise ReservationNotActive(
            f"reservation {command.reservation_id!r} is {reservation.status}",
            [{"reservation_id": command.reservation_id, "status": reservation.status}],
        )
    check_period(store, command.occurred_at)
    return reservation


def release_reservation(command: ReleaseReservation, context: Context) -> list[Change]:
    """Give the held lines back to `available`."""
    reservation = active_reservation(command, context)
    return ended(command, reservation, StockReservationReleased, ReservationReleased)


def expire_reservation(command: ExpireReservation, context: Context) -> list[Change]:
    """End a reservation whose `expires_at` has passed (an early message is refused)."""
    reservation = active_reservation(command, context)
    if reservation.expires_at is None or command.now < reservation.expires_at:
        raise ValidationRejected(
            f"reservation {command.reservation_id!r} is not due to expire",
            [{"field": "expires_at", "message": "has not passed"}],
        )
    return ended(command, reservation, StockReservationExpired, ReservationExpired)


def ended(
    command: ReleaseReservation | ExpireReservation,
    reservation: ReservationState,
    stock_event: type[StockReservationReleased | StockReservationExpired],
    document_event: type[ReservationReleased | ReservationExpired],
) -> list[Change]:
    """Each held line back to `available`, and the document's end, as `stock_event` and
    `document_event` record them."""
    changes = [
        stock_change(
            stock_event(
                store_id=command.store_id,
                sku=sku,
                occurred_at=command.occurred_at,
                quantity=quantity,
                reservation_id=command.reservation_id,
            )
        )
        for sku, quantity in reservation.lines.items()
    ]
    end = document_event(
        store_id=command.store_id,
        reservation_id=command.reservation_id,
        occurred_at=command.occurred_at,
    )
    stream = reservation_stream(command.store_id, command.reservation_id)
    return [*changes, document_change(stream, end, command.store_id, command.occurred_at)]


def fulfil_reservation(command: FulfilReservation, context: Context) -> list[Change]:
    """Turn the held lines into the sale `sale_id` (`available` does not move)."""
    reservation = active_reservation(command, context)
    policy = open_store(context, command.store_id).negative_stock
    lapsed = reservation.expires_at
    if lapsed is not None and command.now >= lapsed:
        # The hold has ended even if the worker has not recorded the expiry yet.
        raise ReservationNotActive(
            f"reservation {command.reservation_id!r} expired at {lapsed.isoformat()}",
            [{"reservation_id": command.reservation_id, "status": "expired"}],
        )
    reject_duplicate_sale(context, command.store_id, command.sale_id)
    changes = [
        stock_change(
            StockReservationFulfilled(
                store_id=command.store_id,
                sku=sku,
                occurred_at=command.occurred_at,
                quantity=quantity,
                reservation_id=command.reservation_id,
                sale_id=command.sale_id,
            )
        )
        for sku, quantity in reservation.lines.items()
    ]
    if policy == "deny":
        # The hold covers it from its own time on; dated earlier, or after a count that
        # found fewer, the units must be on hand then (rule 4).
        check_available(context, changes)
    return [*changes, *fulfilment_documents(command, reservation)]


def fulfilment_documents(command: FulfilReservation, reservation: ReservationState) -> list[Change]:
    """The reservation's end as fulfilled, and the new sale it became."""
    fulfilled = ReservationFulfilled(
        store_id=command.store_id,
        reservation_id=command.reservation_id,
        sale_id=command.sale_id,
        occurred_at=command.occurred_at,
    )
    sale = SaleRecorded(
        store_id=command.store_id,
        sale_id=command.sale_id,
        lines=tuple(Line(sku, quantity) for sku, quantity in reservation.lines.items()),
        occurred_at=command.occurred_at,
        reservation_id=command.reservation_id,
    )
    store, at = command.store_id, command.occurred_at
    return [
        document_change(reservation_stream(store, command.reservation_id), fulfilled, store, at),
        document_change(sale_stream(store, command.sale_id), sale, store, at, new=True),
    ]
