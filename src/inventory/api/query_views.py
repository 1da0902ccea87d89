"""Response bodies of the stock queries, made from the read models' rows; page cursors."""

from __future__ import annotations

import base64
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from inventory.api import integers
from inventory.api.errors import ApiError
from inventory.service.result import show_quantity

Quantity = int | str


class StockLevel(msgspec.Struct, frozen=True, kw_only=True):
    """One item's quantities at one store (integers for whole-unit products, else strings)."""

    store: str
    sku: str
    name: str | None
    on_hand: Quantity
    reserved: Quantity
    available: Quantity
    in_transit_in: Quantity
    in_transit_out: Quantity
    reorder_min: Quantity | None
    reorder_max: Quantity | None
    version: int
    updated_at: datetime | None


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One stock event with `on_hand` after it; `absorbed` when a later-known count hid it."""

    seq: int
    position: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    delta: Quantity
    on_hand_after: Quantity
    reason: str | None
    reference: str | None
    actor: str | None
    absorbed: bool
    actor_name: str | None  # who `actor` is, as the event's metadata named them


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """A product matching the search, with its levels in the stores in scope."""

    sku: str
    name: str
    barcode: str | None
    unit: str
    decimals: int
    levels: list[StockLevel]


def quantity(value: Decimal | None, decimals: int) -> Quantity | None:
    """api.md: an integer for whole-unit products, a string otherwise; None stays None."""
    return None if value is None else show_quantity(value, decimals)


def level(row: tuple[Any, ...]) -> StockLevel:
    """A StockLevel from a row of `readmodels.stock_levels.queries.LEVEL_COLUMNS`."""
    store, sku, name, decimals, *amounts = row[:9]
    on_hand, reserved, available, in_in, in_out = (show_quantity(a, decimals) for a in amounts)
    return StockLevel(
        store=store,
        sku=sku,
        name=name,
        on_hand=on_hand,
        reserved=reserved,
        available=available,
        in_transit_in=in_in,
        in_transit_out=in_out,
        reorder_min=quantity(row[9], decimals),
        reorder_max=quantity(row[10], decimals),
        version=row[11],
        updated_at=row[12],
    )


def ledger_entry(row: tuple[Any, ...], decimals: int) -> LedgerEntry:
    """A LedgerEntry from `seq, position, type, occurred_at, recorded_at, delta,
    on_hand_after, reason, reference, actor, absorbed, actor_name`."""
    seq, position, type_, occurred_at, recorded_at, delta, after, *rest = row
    return LedgerEntry(
        seq=seq,
        position=position,
        type=type_,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        delta=show_quantity(delta, decimals),
        on_hand_after=show_quantity(after, decimals),
        reason=rest[0],
        reference=rest[1],
        actor=rest[2],
        absorbed=rest[3],
        actor_name=rest[4],
    )


def encode_cursor(key: str | int) -> str:
    """An opaque cursor for the last row's key."""
    return base64.urlsafe_b64encode(str(key).encode()).decode()


def decode_cursor(raw: str | None, default: str = "") -> str:
    """The key a cursor holds; 422 for one this API did not issue."""
    if raw is None:
        return default
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "validation_failed", "The cursor is not one this API issued.") from None


def decode_int_cursor(raw: str | None) -> int:
    """A numeric key (seq, id) from a cursor."""
    key = integers.parse(decode_cursor(raw, "0"), integers.Bounds(lowest=0))
    if key is None:
        raise ApiError(422, "validation_failed", "The cursor is not one this API issued.")
    return key


def search_hits(rows: list[tuple[Any, ...]]) -> list[SearchHit]:
    """The hits of `readmodels.search.search`'s rows, each with its levels."""
    hits: list[SearchHit] = []
    for row in rows:
        if not hits or hits[-1].sku != row[0]:
            hit = SearchHit(
                sku=row[0], name=row[1], barcode=row[2], unit=row[3], decimals=row[4], levels=[]
            )
            hits.append(hit)
        if row[5] is not None:  # the level's store: null for a hit without levels
            hits[-1].levels.append(level(row[5:]))
    return hits
