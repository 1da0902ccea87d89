"""Catalog and store bodies (api.md), and the field types every request body shares."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, TypeVar

import msgspec

from inventory.domain import commands as domain
from inventory.domain.state import ProductState, StoreState
from inventory.domain.window import (
    DEFAULT_BACKDATE_DAYS,
    MAX_BACKDATE_DAYS,
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

    def to_command(self, at: datetime) -> domain.RegisterProduct:
        """Register the product, at `at`."""
        return domain.RegisterProduct(
            sku=self.sku,
            name=self.name,
            description=self.description,
            barcode=self.barcode,
            unit=self.unit,
            decimals=self.decimals,
            category=self.category,
            now=at,
        )


class ProductChanges(Body):
    """PATCH /v1/products/{sku}: the fields to change."""

    name: Text | None = None
    description: LongText | None = None
    barcode: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    category: Text | None = None

    def to_command(self, sku: str, at: datetime) -> domain.UpdateProduct:
        """Change the product `sku`, at `at`."""
        return domain.UpdateProduct(
            sku=sku,
            name=self.name,
            description=self.description,
            barcode=self.barcode,
            category=self.category,
            now=at,
        )


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

    def to_command(self, at: datetime) -> domain.OpenStore:
        """Open the store, at `at`."""
        return domain.OpenStore(
            store_id=self.id,
            name=self.name,
            location=self.location,
            timezone=self.timezone,
            negative_stock=self.negative_stock,
            backdate_days=self.backdate_days,
            now=at,
        )


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
