"""Request and response bodies of the catalog, store and stock-command routes (api.md)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

from inventory.domain.state import ProductState, StoreState
from inventory.domain.window import (
    DEFAULT_BACKDATE_DAYS,
    EXPIRY_TEXT,
    MAX_BACKDATE_DAYS,
    UNTIL_TEXT,
    WINDOW_TEXT,
)

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\s]+$")]
Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\s/]+$")]
QUANTITY_DESCRIPTION = 'A JSON number or a string ("2.5"), in the plain grammar -?digits[.digits].'
# The door (api/json_body.py) holds every Decimal field to that grammar before decoding.
Quantity = Annotated[Decimal, msgspec.Meta(description=QUANTITY_DESCRIPTION)]
OccurredAt = Annotated[datetime, msgspec.Meta(description=WINDOW_TEXT)]
Reason = Literal["damaged", "expired", "theft", "lost", "found", "correction", "other"]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every request body refuses unknown fields (api.md conventions)."""


class NewProduct(Body):
    """POST /v1/products."""

    sku: Sku
    name: Text
    description: LongText | None = None
    barcode: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = "each"
    decimals: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    category: Text | None = None


class ProductChanges(Body):
    """PATCH /v1/products/{sku}: the fields to change."""

    name: Text | None = None
    description: LongText | None = None
    barcode: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    category: Text | None = None


class NewStore(Body):
    """POST /v1/stores."""

    id: Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.]*$")]
    name: Text
    location: Text | None = None
    timezone: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=64,
            description="An IANA time zone (Europe/Paris); the store's movement reports "
            "count its local days.",
        ),
    ] = "UTC"
    negative_stock: Literal["deny", "allow"] = "deny"
    backdate_days: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=MAX_BACKDATE_DAYS,
            description="How many days before now clerks and API keys may date this "
            "store's commands (managers and admins: back to 2000-01-01).",
        ),
    ] = DEFAULT_BACKDATE_DAYS


class Line(Body):
    """A SKU and a quantity."""

    sku: Sku
    quantity: Quantity


class ReceiptLine(Line):
    """A received SKU, optionally with its unit cost."""

    unit_cost: Quantity | None = None


class AdjustmentLine(Body):
    """A signed correction with its reason."""

    sku: Sku
    delta: Quantity
    reason: Reason


class CountLine(Body):
    """A counted SKU; `expected_version` guards the absolute set."""

    sku: Sku
    counted: Quantity
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


Lines = Annotated[list[Line], msgspec.Meta(min_length=1, max_length=1000)]


class Receipt(Body):
    """POST /v1/stores/{store}/receipts."""

    lines: Annotated[list[ReceiptLine], msgspec.Meta(min_length=1, max_length=1000)]
    reference: Text | None = None
    occurred_at: OccurredAt | None = None
    note: LongText | None = None


class Sale(Body):
    """POST /v1/stores/{store}/sales."""

    sale_id: Identifier
    lines: Lines
    occurred_at: OccurredAt | None = None
    offline: bool = False


class Return(Body):
    """POST /v1/stores/{store}/returns."""

    sale_id: Identifier
    lines: Lines
    restock: bool = True
    occurred_at: OccurredAt | None = None


class Adjustment(Body):
    """POST /v1/stores/{store}/adjustments."""

    lines: Annotated[list[AdjustmentLine], msgspec.Meta(min_length=1, max_length=1000)]
    note: LongText | None = None
    occurred_at: OccurredAt | None = None


class Count(Body):
    """POST /v1/stores/{store}/counts."""

    lines: Annotated[list[CountLine], msgspec.Meta(min_length=1, max_length=1000)]
    occurred_at: OccurredAt | None = None
    note: LongText | None = None


class Reservation(Body):
    """POST /v1/stores/{store}/reservations."""

    reservation_id: Identifier
    lines: Lines
    expires_at: Annotated[datetime, msgspec.Meta(description=EXPIRY_TEXT)] | None = None


class Empty(Body):
    """`{}`: release a reservation, cancel a transfer."""


class Fulfilment(Body):
    """POST /v1/stores/{store}/reservations/{id}/fulfil."""

    sale_id: Identifier


class ReorderPoint(Body):
    """PUT /v1/stores/{store}/stock/{sku}/reorder-point."""

    min: Quantity
    max: Quantity | None = None


class PeriodClose(Body):
    """POST /v1/stores/{store}/period-close."""

    until: Annotated[datetime, msgspec.Meta(description=UNTIL_TEXT)]


class Transfer(Body):
    """POST /v1/transfers."""

    transfer_id: Identifier
    from_store: Identifier
    to_store: Identifier
    lines: Lines
    occurred_at: OccurredAt | None = None


class TransferReceipt(Body):
    """POST /v1/transfers/{id}/receive (part or all of what is outstanding)."""

    lines: Lines
    occurred_at: OccurredAt | None = None


class Product(msgspec.Struct, frozen=True, kw_only=True):
    """A catalog entry."""

    sku: str
    name: str
    description: str | None
    barcode: str | None
    unit: str
    decimals: int
    category: str | None
    discontinued: bool
    version: int

    @classmethod
    def of(cls, state: ProductState, version: int) -> Product:
        """The public view of a product's state."""
        return cls(
            sku=state.sku,
            name=state.name,
            description=state.description,
            barcode=state.barcode,
            unit=state.unit,
            decimals=state.decimals,
            category=state.category,
            discontinued=state.discontinued,
            version=version,
        )


class Store(msgspec.Struct, frozen=True, kw_only=True):
    """A store."""

    id: str
    name: str
    location: str | None
    timezone: str
    negative_stock: str
    closed_until: datetime | None
    backdate_days: int
    version: int

    @classmethod
    def of(cls, state: StoreState, version: int) -> Store:
        """The public view of a store's state."""
        return cls(
            id=state.store_id,
            name=state.name,
            location=state.location,
            timezone=state.timezone,
            negative_stock=state.negative_stock,
            closed_until=state.closed_until,
            backdate_days=state.backdate_days,
            version=version,
        )


T = TypeVar("T")


class Page(msgspec.Struct, Generic[T], frozen=True):
    """A page of a list: `next_cursor` is null on the last page."""

    items: list[T]
    next_cursor: str | None
