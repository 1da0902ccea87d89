"""Events of the `stock-{store_id}-{sku}` streams: each carries what its ledger line needs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

AdjustmentReason = Literal["damaged", "expired", "theft", "lost", "found", "correction", "other"]


class StockFact(msgspec.Struct, frozen=True, kw_only=True):
    """What every stock event says: which item at which store, and when it happened."""

    store_id: str
    sku: str
    occurred_at: datetime


class StockReceived(StockFact, frozen=True, kw_only=True, tag="stock.received"):
    """A delivery arrived: `on_hand` rises by `quantity`."""

    quantity: Decimal
    unit_cost: Decimal | None = None
    reference: str | None = None
    note: str | None = None


class StockSold(StockFact, frozen=True, kw_only=True, tag="stock.sold"):
    """Part of a sale: `on_hand` falls by `quantity`."""

    quantity: Decimal
    sale_id: str
    offline: bool = False
    # How much of `quantity` `available` did not cover at its business time (rule 4):
    # recorded so the read side alerts without recomputing; 0 in events from before it.
    shortfall: Decimal = Decimal(0)


class StockReturned(StockFact, frozen=True, kw_only=True, tag="stock.returned"):
    """Part of a return: `on_hand` rises by `quantity` when restocked."""

    quantity: Decimal
    sale_id: str
    restock: bool = True


class StockAdjusted(StockFact, frozen=True, kw_only=True, tag="stock.adjusted"):
    """A correction with a reason: `on_hand` moves by `delta`."""

    delta: Decimal
    reason: AdjustmentReason
    note: str | None = None


class StockCounted(StockFact, frozen=True, kw_only=True, tag="stock.counted"):
    """A shelf count: the anchor `on_hand` is computed from (rule 3)."""

    counted: Decimal
    note: str | None = None


class StockReserved(StockFact, frozen=True, kw_only=True, tag="stock.reserved"):
    """Part of a reservation: `reserved` rises by `quantity`."""

    quantity: Decimal
    reservation_id: str
    expires_at: datetime | None = None


class StockReservationReleased(
    StockFact, frozen=True, kw_only=True, tag="stock.reservation_released"
):
    """A reservation was released: `reserved` falls by `quantity`."""

    quantity: Decimal
    reservation_id: str


class StockReservationExpired(
    StockFact, frozen=True, kw_only=True, tag="stock.reservation_expired"
):
    """A reservation ran out: `reserved` falls by `quantity`."""

    quantity: Decimal
    reservation_id: str


class StockReservationFulfilled(
    StockFact, frozen=True, kw_only=True, tag="stock.reservation_fulfilled"
):
    """A reservation became the sale `sale_id`: `reserved` and `on_hand` fall by `quantity`."""

    quantity: Decimal
    reservation_id: str
    sale_id: str


class StockTransferDispatched(
    StockFact, frozen=True, kw_only=True, tag="stock.transfer_dispatched"
):
    """At the source: `on_hand` falls and `in_transit_out` rises by `quantity`."""

    quantity: Decimal
    transfer_id: str
    to_store: str


class StockTransferIncoming(StockFact, frozen=True, kw_only=True, tag="stock.transfer_incoming"):
    """At the destination, on dispatch: `in_transit_in` rises by `quantity`."""

    quantity: Decimal
    transfer_id: str
    from_store: str


class StockTransferReceived(StockFact, frozen=True, kw_only=True, tag="stock.transfer_received"):
    """At the destination: `on_hand` rises and `in_transit_in` falls by `quantity`."""

    quantity: Decimal
    transfer_id: str
    from_store: str


class StockTransferDelivered(StockFact, frozen=True, kw_only=True, tag="stock.transfer_delivered"):
    """At the source, on receipt: `in_transit_out` falls by `quantity`."""

    quantity: Decimal
    transfer_id: str
    to_store: str


class StockTransferCancelled(StockFact, frozen=True, kw_only=True, tag="stock.transfer_cancelled"):
    """Back at the source: `on_hand` rises and `in_transit_out` falls by what never arrived."""

    quantity: Decimal
    transfer_id: str
    to_store: str


class StockTransferWithdrawn(StockFact, frozen=True, kw_only=True, tag="stock.transfer_withdrawn"):
    """At the destination, on cancel: `in_transit_in` falls by what will not arrive."""

    quantity: Decimal
    transfer_id: str
    from_store: str


class StockReorderPointSet(StockFact, frozen=True, kw_only=True, tag="stock.reorder_point_set"):
    """The low-stock threshold (`minimum`) and the level to reorder up to (`maximum`)."""

    minimum: Decimal
    maximum: Decimal | None = None


StockEvent = (
    StockReceived
    | StockSold
    | StockReturned
    | StockAdjusted
    | StockCounted
    | StockReserved
    | StockReservationReleased
    | StockReservationExpired
    | StockReservationFulfilled
    | StockTransferDispatched
    | StockTransferIncoming
    | StockTransferReceived
    | StockTransferDelivered
    | StockTransferCancelled
    | StockTransferWithdrawn
    | StockReorderPointSet
)

STOCK_EVENTS: tuple[type[StockFact], ...] = (
    StockReceived,
    StockSold,
    StockReturned,
    StockAdjusted,
    StockCounted,
    StockReserved,
    StockReservationReleased,
    StockReservationExpired,
    StockReservationFulfilled,
    StockTransferDispatched,
    StockTransferIncoming,
    StockTransferReceived,
    StockTransferDelivered,
    StockTransferCancelled,
    StockTransferWithdrawn,
    StockReorderPointSet,
)
