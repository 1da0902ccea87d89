"""What a validated CSV row asks for, and what became of a row."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class RowPlan:
    """A row that passed the API's body rules: the product fields it sets (None: keep,
    or the default for a new SKU), the count it records and the cost it names."""

    line: int
    sku: str
    name: str | None = None
    description: str | None = None
    barcode: str | None = None
    unit: str | None = None
    decimals: int | None = None
    category: str | None = None
    on_hand: Decimal | None = None
    unit_cost: Decimal | None = None


@dataclass(frozen=True)
class RowOutcome:
    """A row's outcome: `code` None when it landed (or had nothing to change)."""

    line: int
    sku: str | None
    code: str | None = None
    message: str | None = None
    events: int = 0
