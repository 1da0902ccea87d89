"""Stream names (stable API): which stream holds which entity."""

from __future__ import annotations

from typing import Literal

StreamKind = Literal["store", "product", "stock", "transfer", "sale", "reservation"]

# Longest prefixes first is not needed: no prefix is a prefix of another.
PREFIXES: tuple[tuple[str, StreamKind], ...] = (
    ("store-", "store"),
    ("product-", "product"),
    ("stock-", "stock"),
    ("transfer-", "transfer"),
    ("sale-", "sale"),
    ("reservation-", "reservation"),
)


def store_stream(store_id: str) -> str:
    """`store-{store_id}`: the store, its negative-stock policy and period closes."""
    return f"store-{store_id}"


def product_stream(sku: str) -> str:
    """`product-{sku}`: the catalog entry."""
    return f"product-{sku}"


def stock_stream(store_id: str, sku: str) -> str:
    """`stock-{store_id}-{sku}`: every stock event of one item at one store."""
    return f"stock-{store_id}-{sku}"


def transfer_stream(transfer_id: str) -> str:
    """`transfer-{transfer_id}`: the transfer as a document."""
    return f"transfer-{transfer_id}"


def sale_stream(store_id: str, sale_id: str) -> str:
    """`sale-{store_id}-{sale_id}`: the sale as a document, to check returns against."""
    return f"sale-{store_id}-{sale_id}"


def reservation_stream(store_id: str, reservation_id: str) -> str:
    """`reservation-{store_id}-{reservation_id}`: the reservation as a document."""
    return f"reservation-{store_id}-{reservation_id}"


def kind_of(stream: str) -> StreamKind:
    """The kind of entity a stream holds, from its prefix; ValueError for a foreign name."""
    for prefix, kind in PREFIXES:
        if stream.startswith(prefix):
            return kind
    raise ValueError(f"{stream!r} is not a stream of the stock domain")
