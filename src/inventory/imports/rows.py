"""A CSV row held to the very rules of the API's bodies: the catalog's fields and quantities.

The constraints repeat those of `api/schemas.py` (`NewProduct`) and the quantity grammar of
`api/json_body.py`, which this room may not import; tests/unit/test_import_csv.py fails
the day they part.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

import msgspec

from inventory.imports.csvfile import BadRecord, Record
from inventory.imports.plan import RowOutcome, RowPlan

Sku = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\s/]+$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=2000)]
Barcode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Unit = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
Decimals = Annotated[int, msgspec.Meta(ge=0, le=3)]
QUANTITIES = ("on_hand", "unit_cost")
PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


class ImportRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One row: the fields of `POST /v1/products` (all but `sku` optional, as in a PATCH)
    and the quantities of a count (`on_hand`) and of a receipt line (`unit_cost`)."""

    sku: Sku
    name: Text | None = None
    description: LongText | None = None
    barcode: Barcode | None = None
    unit: Unit | None = None
    decimals: Decimals | None = None
    category: Text | None = None
    on_hand: Decimal | None = None
    unit_cost: Decimal | None = None


def row_plan(record: Record | BadRecord) -> RowPlan | RowOutcome:
    """The row's plan, or its outcome as a bad row with the code the API would answer."""
    if isinstance(record, BadRecord):
        return RowOutcome(record.line, record.sku, record.code, record.message)
    cells = record.cells
    sku = cells.get("sku")
    nul = sorted(name for name, value in cells.items() if "\x00" in value)
    if nul:
        return _bad(record.line, sku, f"NUL characters in {', '.join(nul)}")
    for name in QUANTITIES:
        if name in cells and not PLAIN_DECIMAL.fullmatch(cells[name]):
            return _bad(record.line, sku, f"{name}: must be a plain decimal (-?digits[.digits])")
    if "decimals" in cells and not cells["decimals"].isascii():
        return _bad(record.line, sku, "decimals: must be an integer between 0 and 3")
    try:
        row = msgspec.convert(cells, ImportRow, strict=False)
    except msgspec.ValidationError as error:
        return _bad(record.line, sku, str(error).replace("$.", ""))
    return RowPlan(
        line=record.line,
        sku=row.sku,
        name=row.name,
        description=row.description,
        barcode=row.barcode,
        unit=row.unit,
        decimals=row.decimals,
        category=row.category,
        on_hand=row.on_hand,
        unit_cost=row.unit_cost,
    )


def _bad(line: int, sku: str | None, message: str) -> RowOutcome:
    shown = sku if sku is not None and len(sku) <= 100 else None
    return RowOutcome(line, shown, "validation_failed", message)
