"""The checks every stock command passes first, in order: values, store, window, products,
period."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from inventory.domain.authority import Authority
from inventory.domain.context import Change, Context
from inventory.domain.events import Event, StockEvent
from inventory.domain.rules import (
    Problems,
    Sign,
    check_period,
    check_window,
    line_problems,
    open_store,
    quantity_problem,
    registered_products,
    reject_if,
    time_problems,
)
from inventory.domain.state import ProductState, StoreState
from inventory.domain.streams import stock_stream


class Amount(NamedTuple):
    """One line's quantity to check against its product's decimals."""

    line: int
    sku: str
    field: str
    value: Decimal
    sign: Sign


def amount_problems(amounts: Iterable[Amount], products: Mapping[str, ProductState]) -> Problems:
    """Every amount out of range, of the wrong sign or with too many decimals."""
    problems: Problems = []
    for amount in amounts:
        decimals = products[amount.sku].decimals
        problem = quantity_problem(amount.value, amount.sign, decimals)
        if problem is not None:
            problems.append(
                {"line": amount.line, "sku": amount.sku, "field": amount.field, "message": problem}
            )
    return problems


class Dated(Protocol):
    """A dated command: its business time, its decision time and its sender."""

    @property
    def occurred_at(self) -> datetime: ...
    @property
    def now(self) -> datetime: ...
    @property
    def authority(self) -> Authority: ...


def admitted(
    context: Context, store_id: str, command: Dated, amounts: Sequence[Amount]
) -> tuple[StoreState, dict[str, ProductState]]:
    """The store and products of a one-store command whose lines are `amounts`.

    Raises ValidationRejected, StoreNotFound, OccurredAtOutOfRange (the store's window for
    this sender), ProductNotFound or PeriodClosed, in that order (decimals are checked once
    the products are known).
    """
    skus = [amount.sku for amount in amounts]
    reject_if(time_problems(command.occurred_at) + line_problems(skus))
    store = open_store(context, store_id)
    check_window(store, command.occurred_at, command.now, command.authority)
    products = registered_products(context, skus)
    reject_if(amount_problems(amounts, products))
    check_period(store, command.occurred_at)
    return store, products


def discontinued_problems(products: Mapping[str, ProductState], skus: Sequence[str]) -> Problems:
    """Lines naming a discontinued product (refused where new stock would come in)."""
    return [
        {"line": index, "sku": sku, "message": "the product is discontinued"}
        for index, sku in enumerate(skus)
        if products[sku].discontinued
    ]


def stock_change(event: StockEvent, expected_version: int | None = None) -> Change:
    """The change appending a stock event to its item's stream."""
    return Change(
        stream=stock_stream(event.store_id, event.sku),
        event=event,
        store=event.store_id,
        sku=event.sku,
        occurred_at=event.occurred_at,
        expected_version=expected_version,
    )


def document_change(
    stream: str, event: Event, store: str | None, occurred_at: datetime, *, new: bool = False
) -> Change:
    """The change appending a document event; `new` documents must not exist yet."""
    return Change(
        stream=stream,
        event=event,
        store=store,
        occurred_at=occurred_at,
        expected_version=0 if new else None,
    )
