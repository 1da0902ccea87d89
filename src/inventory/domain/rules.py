"""Checks shared by the decisions: values, times, lines, existence, period close, stock."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from inventory.domain.authority import Authority
from inventory.domain.availability import Shortfall, shortfall
from inventory.domain.context import Change, Context
from inventory.domain.errors import (
    InsufficientStock,
    OccurredAtOutOfRange,
    PeriodClosed,
    ProductNotFound,
    StoreNotFound,
    ValidationRejected,
)
from inventory.domain.events import StockEvent, StockFact
from inventory.domain.state import ProductState, StoreState
from inventory.domain.window import business_window

MAX_QUANTITY = Decimal(10) ** 12
MAX_LINES = 1000
MAX_DECIMALS = 3

Sign = Literal["positive", "non_negative", "non_zero"]
Problems = list[dict[str, Any]]


def fractional_digits(value: Decimal) -> int:
    """How many fractional digits `value` needs (`2.50` needs one)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


SIGN_RULES: dict[Sign, tuple[Callable[[Decimal], bool], str]] = {
    "positive": (lambda value: value > 0, "must be greater than zero"),
    "non_negative": (lambda value: value >= 0, "must not be negative"),
    "non_zero": (lambda value: value != 0, "must not be zero"),
}


def quantity_problem(value: Decimal, sign: Sign, decimals: int = MAX_DECIMALS) -> str | None:
    """Why `value` is not an acceptable quantity, or None."""
    if not value.is_finite():
        return "must be a finite number"
    if abs(value) > MAX_QUANTITY:
        return "must lie within ±10^12"
    holds, message = SIGN_RULES[sign]
    if not holds(value):
        return message
    if fractional_digits(value) > decimals:
        return f"has more than {decimals} decimal places"
    return None


def time_problems(at: datetime, field: str = "occurred_at") -> Problems:
    """A time must carry an offset (its window is the store's: `check_window`)."""
    if at.tzinfo is None or at.utcoffset() is None:
        return [{"field": field, "message": "must carry a UTC offset"}]
    return []


def check_window(
    store: StoreState, occurred_at: datetime, now: datetime, authority: Authority
) -> None:
    """OccurredAtOutOfRange when `occurred_at` lies outside the store's business-time window
    for this sender (`errors` holds the window, and the period close when there is one)."""
    limit = store.backdate_days if authority.backdate_limited else None
    window = business_window(now, limit)
    if window.admits(occurred_at):
        return
    problem = window.problem()
    if store.closed_until is not None:
        problem["closed_until"] = store.closed_until.isoformat()
    raise OccurredAtOutOfRange(
        f"occurred_at lies outside the business-time window of store {store.store_id!r}",
        [problem],
    )


def check_dated(
    store: StoreState, occurred_at: datetime, now: datetime, authority: Authority
) -> None:
    """`check_window`, then `check_period`: a date the store accepts from this sender."""
    check_window(store, occurred_at, now, authority)
    check_period(store, occurred_at)


def line_problems(skus: Sequence[str]) -> Problems:
    """1 to 1,000 lines, each SKU at most once."""
    if not skus:
        return [{"field": "lines", "message": "must not be empty"}]
    if len(skus) > MAX_LINES:
        return [{"field": "lines", "message": f"must not hold more than {MAX_LINES} lines"}]
    seen: set[str] = set()
    problems: Problems = []
    for index, sku in enumerate(skus):
        if sku in seen:
            problems.append({"line": index, "sku": sku, "message": "SKU listed twice"})
        seen.add(sku)
    return problems


def reject_if(problems: Problems, detail: str = "the command has invalid values") -> None:
    """Raise ValidationRejected listing `problems`, if there are any."""
    if problems:
        raise ValidationRejected(detail, problems)


def open_store(context: Context, store_id: str) -> StoreState:
    """The store's state; StoreNotFound when it was never opened."""
    store = context.store(store_id)
    if not store.exists:
        raise StoreNotFound(f"store {store_id!r} does not exist", [{"store": store_id}])
    return store


def registered_products(context: Context, skus: Iterable[str]) -> dict[str, ProductState]:
    """Each SKU's product; ProductNotFound listing every unknown SKU."""
    products = {sku: context.product(sku) for sku in skus}
    missing = [sku for sku, product in products.items() if not product.exists]
    if missing:
        raise ProductNotFound(
            f"unknown SKU {', '.join(missing)}", [{"sku": sku} for sku in missing]
        )
    return products


def check_period(store: StoreState, occurred_at: datetime) -> None:
    """PeriodClosed when the store's books are closed at or after `occurred_at`."""
    closed = store.closed_until
    if closed is not None and occurred_at <= closed:
        raise PeriodClosed(
            f"the books of store {store.store_id!r} are closed until {closed.isoformat()}",
            [{"store": store.store_id, "closed_until": closed.isoformat()}],
        )


def shortfalls(context: Context, changes: Iterable[Change]) -> dict[str, Shortfall]:
    """Per stock stream, the worst point at which `changes` take `available` below zero:
    as of their business time, at every later time up to the count that absorbs them, and
    now (rule 4; see domain/availability.py)."""
    grouped: dict[str, list[StockEvent]] = {}
    for change in changes:
        if isinstance(change.event, StockEvent):
            grouped.setdefault(change.stream, []).append(change.event)
    found: dict[str, Shortfall] = {}
    for stream, events in grouped.items():
        at = events[0].occurred_at
        stock = context.stock(events[0].store_id, events[0].sku)
        short = shortfall(stock, context.history(stream, at), events)
        if short is not None:
            found[stream] = short
    return found


def check_available(context: Context, changes: Sequence[Change]) -> None:
    """InsufficientStock when stock events lower `available` below zero, now or as of
    their business time.

    `requested` is how much the line takes from `available`; `as_of` names the business
    time that was short when it is not now.
    """
    found = shortfalls(context, changes)
    problems: Problems = []
    for change in changes:
        short = found.pop(change.stream, None)
        if short is None or not isinstance(change.event, StockFact):
            continue
        sku = change.event.sku
        # Quantized to the product's decimals: the API shows `3` or `"3.00"` from that.
        exact = Decimal(1).scaleb(-context.product(sku).decimals)
        problem: dict[str, Any] = {
            "sku": sku,
            "available": short.available.quantize(exact),
            "requested": short.requested.quantize(exact),
        }
        if short.at is not None:
            problem["as_of"] = short.at.isoformat()
        problems.append(problem)
    if problems:
        raise InsufficientStock("not enough stock available", problems)
