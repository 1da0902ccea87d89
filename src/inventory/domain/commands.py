"""Commands: already parsed values (Decimal quantities, aware datetimes, resolved times).

Every command carries `now`, the server time it is decided at, so the decider stays pure;
stock commands also carry `occurred_at`, already defaulted to `now` when the client sent none.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from inventory.domain.authority import Authority
from inventory.domain.events import AdjustmentReason, Line, NegativeStockPolicy

__all__ = [
    "AdjustStock",
    "AdjustmentLine",
    "CancelTransfer",
    "ClosePeriod",
    "Command",
    "CountLine",
    "CountStock",
    "DiscontinueProduct",
    "DispatchTransfer",
    "ExpireReservation",
    "FulfilReservation",
    "Line",
    "OpenStore",
    "ReceiptLine",
    "ReceiveStock",
    "ReceiveTransfer",
    "RecordReturn",
    "RecordSale",
    "RegisterProduct",
    "ReleaseReservation",
    "ReserveStock",
    "SetReorderPoint",
    "UpdateProduct",
]


class ReceiptLine(msgspec.Struct, frozen=True, kw_only=True):
    """A received SKU, its quantity and optionally its unit cost."""

    sku: str
    quantity: Decimal
    unit_cost: Decimal | None = None


class AdjustmentLine(msgspec.Struct, frozen=True, kw_only=True):
    """A signed correction of one SKU, with its reason."""

    sku: str
    delta: Decimal
    reason: AdjustmentReason


class CountLine(msgspec.Struct, frozen=True, kw_only=True):
    """A counted SKU; `expected_version` guards the absolute set against a stale view."""

    sku: str
    counted: Decimal
    expected_version: int | None = None


class RegisterProduct(msgspec.Struct, frozen=True, kw_only=True):
    """Add a SKU to the catalog."""

    sku: str
    name: str
    description: str | None = None
    barcode: str | None = None
    unit: str = "each"
    decimals: int = 0
    category: str | None = None
    now: datetime


class UpdateProduct(msgspec.Struct, frozen=True, kw_only=True):
    """Change some of a product's details (`None`: unchanged)."""

    sku: str
    name: str | None = None
    description: str | None = None
    barcode: str | None = None
    category: str | None = None
    now: datetime


class DiscontinueProduct(msgspec.Struct, frozen=True, kw_only=True):
    """Stop buying a product in; stores sell through what they hold."""

    sku: str
    now: datetime


class OpenStore(msgspec.Struct, frozen=True, kw_only=True):
    """Open a store with its negative-stock policy."""

    store_id: str
    name: str
    location: str | None = None
    timezone: str = "UTC"
    negative_stock: NegativeStockPolicy = "deny"
    now: datetime


class ReceiveStock(msgspec.Struct, frozen=True, kw_only=True):
    """Record a delivery at a store."""

    store_id: str
    lines: tuple[ReceiptLine, ...]
    reference: str | None = None
    note: str | None = None
    occurred_at: datetime
    now: datetime


class RecordSale(msgspec.Struct, frozen=True, kw_only=True):
    """Record a sale; an `offline` sale already happened and is never refused for stock."""

    store_id: str
    sale_id: str
    lines: tuple[Line, ...]
    offline: bool = False
    occurred_at: datetime
    now: datetime


class RecordReturn(msgspec.Struct, frozen=True, kw_only=True):
    """Record lines of a sale coming back, restocked unless `restock` is false."""

    store_id: str
    sale_id: str
    lines: tuple[Line, ...]
    restock: bool = True
    occurred_at: datetime
    now: datetime
    authority: Authority = Authority()


class AdjustStock(msgspec.Struct, frozen=True, kw_only=True):
    """Correct on-hand quantities, each with a reason."""

    store_id: str
    lines: tuple[AdjustmentLine, ...]
    note: str | None = None
    occurred_at: datetime
    now: datetime


class CountStock(msgspec.Struct, frozen=True, kw_only=True):
    """Record a shelf count of the listed SKUs (nothing unlisted is touched)."""

    store_id: str
    lines: tuple[CountLine, ...]
    note: str | None = None
    occurred_at: datetime
    now: datetime


class ReserveStock(msgspec.Struct, frozen=True, kw_only=True):
    """Hold stock for a customer until released, expired or fulfilled."""

    store_id: str
    reservation_id: str
    lines: tuple[Line, ...]
    expires_at: datetime | None = None
    occurred_at: datetime
    now: datetime


class ReleaseReservation(msgspec.Struct, frozen=True, kw_only=True):
    """Give up an active reservation."""

    store_id: str
    reservation_id: str
    occurred_at: datetime
    now: datetime


class ExpireReservation(msgspec.Struct, frozen=True, kw_only=True):
    """End an active reservation whose `expires_at` has passed (sent by the worker)."""

    store_id: str
    reservation_id: str
    occurred_at: datetime
    now: datetime


class FulfilReservation(msgspec.Struct, frozen=True, kw_only=True):
    """Turn an active reservation into the sale `sale_id`."""

    store_id: str
    reservation_id: str
    sale_id: str
    occurred_at: datetime
    now: datetime


class SetReorderPoint(msgspec.Struct, frozen=True, kw_only=True):
    """Set the low-stock threshold of one item at one store."""

    store_id: str
    sku: str
    minimum: Decimal
    maximum: Decimal | None = None
    occurred_at: datetime
    now: datetime


class ClosePeriod(msgspec.Struct, frozen=True, kw_only=True):
    """Close a store's books up to `until`."""

    store_id: str
    until: datetime
    occurred_at: datetime
    now: datetime


class DispatchTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """Send stock from one store to another."""

    transfer_id: str
    from_store: str
    to_store: str
    lines: tuple[Line, ...]
    occurred_at: datetime
    now: datetime


class ReceiveTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """Record part or all of an open transfer arriving at its destination."""

    transfer_id: str
    lines: tuple[Line, ...]
    occurred_at: datetime
    now: datetime


class CancelTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """Stop an open transfer; what has not arrived goes back to the source."""

    transfer_id: str
    occurred_at: datetime
    now: datetime


Command = (
    RegisterProduct
    | UpdateProduct
    | DiscontinueProduct
    | OpenStore
    | ReceiveStock
    | RecordSale
    | RecordReturn
    | AdjustStock
    | CountStock
    | ReserveStock
    | ReleaseReservation
    | ExpireReservation
    | FulfilReservation
    | SetReorderPoint
    | ClosePeriod
    | DispatchTransfer
    | ReceiveTransfer
    | CancelTransfer
)
