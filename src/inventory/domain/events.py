"""Domain events under stable tags; `ALL_EVENTS` is what the codec is built from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from inventory.domain.stock_events import (
    STOCK_EVENTS,
    AdjustmentReason,
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockFact,
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
from inventory.domain.window import DEFAULT_BACKDATE_DAYS

__all__ = [
    "ALL_EVENTS",
    "AdjustmentReason",
    "DocumentEvent",
    "Event",
    "Line",
    "NegativeStockPolicy",
    "ProductDiscontinued",
    "ProductEvent",
    "ProductRegistered",
    "ProductUpdated",
    "ReservationEvent",
    "ReservationExpired",
    "ReservationFulfilled",
    "ReservationPlaced",
    "ReservationReleased",
    "SaleEvent",
    "SaleRecorded",
    "SaleReturned",
    "StockAdjusted",
    "StockCounted",
    "StockEvent",
    "StockFact",
    "StockReceived",
    "StockReorderPointSet",
    "StockReservationExpired",
    "StockReservationFulfilled",
    "StockReservationReleased",
    "StockReserved",
    "StockReturned",
    "StockSold",
    "StockTransferCancelled",
    "StockTransferDelivered",
    "StockTransferDispatched",
    "StockTransferIncoming",
    "StockTransferReceived",
    "StockTransferWithdrawn",
    "StoreEvent",
    "StoreOpened",
    "StorePeriodClosed",
    "StoreUpdated",
    "TransferCancelled",
    "TransferDispatched",
    "TransferEvent",
    "TransferReceived",
]

NegativeStockPolicy = Literal["deny", "allow"]


class Line(msgspec.Struct, frozen=True):
    """A SKU and a quantity, as a document lists them."""

    sku: str
    quantity: Decimal


class StoreOpened(msgspec.Struct, frozen=True, kw_only=True, tag="store.opened"):
    """A store exists from now on, with its negative-stock policy."""

    store_id: str
    name: str
    location: str | None = None
    timezone: str = "UTC"
    negative_stock: NegativeStockPolicy = "deny"
    backdate_days: int = DEFAULT_BACKDATE_DAYS  # added later: older events decode with it


class StoreUpdated(msgspec.Struct, frozen=True, kw_only=True, tag="store.updated"):
    """Some of a store's details changed; `None` leaves a field as it was."""

    store_id: str
    name: str | None = None
    location: str | None = None
    timezone: str | None = None
    negative_stock: NegativeStockPolicy | None = None
    backdate_days: int | None = None


class StorePeriodClosed(msgspec.Struct, frozen=True, kw_only=True, tag="store.period_closed"):
    """The store's books are closed: no event may be dated at or before `until`."""

    store_id: str
    until: datetime
    occurred_at: datetime


class ProductRegistered(msgspec.Struct, frozen=True, kw_only=True, tag="product.registered"):
    """A SKU enters the catalog; `decimals` (0-3) bounds its quantities' fractional digits."""

    sku: str
    name: str
    description: str | None = None
    barcode: str | None = None
    unit: str = "each"
    decimals: int = 0
    category: str | None = None


class ProductUpdated(msgspec.Struct, frozen=True, kw_only=True, tag="product.updated"):
    """Some of a product's details changed; `None` leaves a field as it was."""

    sku: str
    name: str | None = None
    description: str | None = None
    barcode: str | None = None
    category: str | None = None


class ProductDiscontinued(msgspec.Struct, frozen=True, kw_only=True, tag="product.discontinued"):
    """The product is no longer bought in: it sells through what stores hold."""

    sku: str
    occurred_at: datetime


class SaleRecorded(msgspec.Struct, frozen=True, kw_only=True, tag="sale.recorded"):
    """The sale as a document: what it sold, so returns can be checked against it."""

    store_id: str
    sale_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime
    offline: bool = False
    reservation_id: str | None = None
    # A line sold more than was available at its business time (an offline sale, or any
    # sale under policy `allow`): only a manager may take a return against it (rule 4).
    oversold: bool = False


class SaleReturned(msgspec.Struct, frozen=True, kw_only=True, tag="sale.returned"):
    """Lines of the sale came back."""

    store_id: str
    sale_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime
    restock: bool = True


class TransferDispatched(msgspec.Struct, frozen=True, kw_only=True, tag="transfer.dispatched"):
    """Stock left `from_store` for `to_store`."""

    transfer_id: str
    from_store: str
    to_store: str
    lines: tuple[Line, ...]
    occurred_at: datetime


class TransferReceived(msgspec.Struct, frozen=True, kw_only=True, tag="transfer.received"):
    """Some or all of the outstanding lines arrived at the destination."""

    transfer_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime


class TransferCancelled(msgspec.Struct, frozen=True, kw_only=True, tag="transfer.cancelled"):
    """The transfer stopped; `lines` is what had not arrived and went back to the source."""

    transfer_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime


class ReservationPlaced(msgspec.Struct, frozen=True, kw_only=True, tag="reservation.placed"):
    """Lines are held for a customer until released, expired or fulfilled."""

    store_id: str
    reservation_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime
    expires_at: datetime | None = None


class ReservationReleased(msgspec.Struct, frozen=True, kw_only=True, tag="reservation.released"):
    """The hold was given up."""

    store_id: str
    reservation_id: str
    occurred_at: datetime


class ReservationExpired(msgspec.Struct, frozen=True, kw_only=True, tag="reservation.expired"):
    """The hold ran out at `expires_at`."""

    store_id: str
    reservation_id: str
    occurred_at: datetime


class ReservationFulfilled(msgspec.Struct, frozen=True, kw_only=True, tag="reservation.fulfilled"):
    """The hold became the sale `sale_id`."""

    store_id: str
    reservation_id: str
    sale_id: str
    occurred_at: datetime


StoreEvent = StoreOpened | StoreUpdated | StorePeriodClosed
ProductEvent = ProductRegistered | ProductUpdated | ProductDiscontinued
SaleEvent = SaleRecorded | SaleReturned
TransferEvent = TransferDispatched | TransferReceived | TransferCancelled
ReservationEvent = (
    ReservationPlaced | ReservationReleased | ReservationExpired | ReservationFulfilled
)
DocumentEvent = SaleEvent | TransferEvent | ReservationEvent
Event = StoreEvent | ProductEvent | StockEvent | DocumentEvent

ALL_EVENTS: tuple[type[msgspec.Struct], ...] = (
    StoreOpened,
    StoreUpdated,
    StorePeriodClosed,
    ProductRegistered,
    ProductUpdated,
    ProductDiscontinued,
    *STOCK_EVENTS,
    SaleRecorded,
    SaleReturned,
    TransferDispatched,
    TransferReceived,
    TransferCancelled,
    ReservationPlaced,
    ReservationReleased,
    ReservationExpired,
    ReservationFulfilled,
)
