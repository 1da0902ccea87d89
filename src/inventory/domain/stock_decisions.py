"""Decisions of the one-store stock commands: receipts, sales, returns, adjustments, counts."""

from __future__ import annotations

from msgspec.structs import replace

from inventory.domain.admission import (
    Amount,
    admitted,
    discontinued_problems,
    document_change,
    stock_change,
)
from inventory.domain.commands import (
    AdjustStock,
    ReceiveStock,
    RecordReturn,
    RecordSale,
    SetReorderPoint,
)
from inventory.domain.context import Change, Context
from inventory.domain.errors import (
    DuplicateSale,
    ReturnBeforeSale,
    ReturnExceedsSale,
    ReturnNeedsManager,
    SaleNotFound,
)
from inventory.domain.events import (
    Line,
    SaleRecorded,
    SaleReturned,
    StockAdjusted,
    StockReceived,
    StockReorderPointSet,
    StockReturned,
    StockSold,
)
from inventory.domain.rules import check_available, quantity_problem, reject_if, shortfalls
from inventory.domain.state import ZERO, SaleState
from inventory.domain.streams import sale_stream

UNIT_COST_DECIMALS = 4


def receive_stock(command: ReceiveStock, context: Context) -> list[Change]:
    """A delivery: never short of stock, but not of a discontinued product."""
    amounts = [
        Amount(index, line.sku, "quantity", line.quantity, "positive")
        for index, line in enumerate(command.lines)
    ]
    _, products = admitted(context, command.store_id, command, amounts)
    problems = discontinued_problems(products, [line.sku for line in command.lines])
    for index, line in enumerate(command.lines):
        cost = line.unit_cost
        problem = (
            None if cost is None else quantity_problem(cost, "non_negative", UNIT_COST_DECIMALS)
        )
        if problem is not None:
            problems.append(
                {"line": index, "sku": line.sku, "field": "unit_cost", "message": problem}
            )
    reject_if(problems)
    return [
        stock_change(
            StockReceived(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                unit_cost=line.unit_cost,
                reference=command.reference,
                note=command.note,
            )
        )
        for line in command.lines
    ]


def line_amounts(lines: tuple[Line, ...]) -> list[Amount]:
    """A document's lines as positive quantities to check."""
    return [
        Amount(index, line.sku, "quantity", line.quantity, "positive")
        for index, line in enumerate(lines)
    ]


def reject_duplicate_sale(context: Context, store_id: str, sale_id: str) -> None:
    """DuplicateSale when `sale_id` is already recorded in the store."""
    if context.sale(store_id, sale_id).exists:
        raise DuplicateSale(
            f"sale {sale_id!r} is already recorded in store {store_id!r}", [{"sale_id": sale_id}]
        )


def record_sale(command: RecordSale, context: Context) -> list[Change]:
    """A sale: once per `sale_id`, short lines refused under `deny` unless offline."""
    store, _ = admitted(context, command.store_id, command, line_amounts(command.lines))
    reject_duplicate_sale(context, command.store_id, command.sale_id)
    changes = sold_changes(command, context, checked=store.negative_stock == "deny")
    recorded = SaleRecorded(
        store_id=command.store_id,
        sale_id=command.sale_id,
        lines=command.lines,
        occurred_at=command.occurred_at,
        offline=command.offline,
        oversold=any(
            isinstance(change.event, StockSold) and change.event.shortfall > 0 for change in changes
        ),
    )
    stream = sale_stream(command.store_id, command.sale_id)
    return [
        *changes,
        document_change(stream, recorded, command.store_id, command.occurred_at, new=True),
    ]


def sold_changes(command: RecordSale, context: Context, *, checked: bool) -> list[Change]:
    """The sale's stock changes: refused when short and `checked` (policy `deny`) unless
    offline, otherwise recorded with the part `available` did not cover (rule 4)."""
    changes = [
        stock_change(
            StockSold(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                sale_id=command.sale_id,
                offline=command.offline,
            )
        )
        for line in command.lines
    ]
    if checked and not command.offline:
        check_available(context, changes)
        return changes
    short = shortfalls(context, changes)
    return [
        replace(change, event=replace(change.event, shortfall=short[change.stream].missing))
        if change.stream in short and isinstance(change.event, StockSold)
        else change
        for change in changes
    ]


def record_return(command: RecordReturn, context: Context) -> list[Change]:
    """A return: at most what the sale sold, less what already came back."""
    admitted(context, command.store_id, command, line_amounts(command.lines))
    check_returnable(returned_sale(command, context), command.lines)
    changes = [
        stock_change(
            StockReturned(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                sale_id=command.sale_id,
                restock=command.restock,
            )
        )
        for line in command.lines
    ]
    returned = SaleReturned(
        store_id=command.store_id,
        sale_id=command.sale_id,
        lines=command.lines,
        occurred_at=command.occurred_at,
        restock=command.restock,
    )
    stream = sale_stream(command.store_id, command.sale_id)
    return [*changes, document_change(stream, returned, command.store_id, command.occurred_at)]


def returned_sale(command: RecordReturn, context: Context) -> SaleState:
    """The sale a return names: recorded, not dated after the return, and, when it oversold,
    returned against by a manager only."""
    sale = context.sale(command.store_id, command.sale_id)
    if not sale.exists:
        raise SaleNotFound(
            f"no sale {command.sale_id!r} in store {command.store_id!r}",
            [{"sale_id": command.sale_id}],
        )
    if sale.occurred_at is not None and command.occurred_at < sale.occurred_at:
        raise ReturnBeforeSale(
            f"the return is dated before sale {command.sale_id!r}",
            [{"field": "occurred_at", "sale_occurred_at": sale.occurred_at.isoformat()}],
        )
    if sale.oversold and not command.authority.manages:
        raise ReturnNeedsManager(
            f"sale {command.sale_id!r} sold more than was available: a manager records "
            "returns against it",
            [{"sale_id": command.sale_id}],
        )
    return sale


def check_returnable(sale: SaleState, lines: tuple[Line, ...]) -> None:
    """ReturnExceedsSale when a line returns more than was sold less already returned."""
    excess = []
    for line in lines:
        sold, back = sale.sold.get(line.sku, ZERO), sale.returned.get(line.sku, ZERO)
        if line.quantity > sold - back:
            excess.append(
                {"sku": line.sku, "sold": sold, "returned": back, "requested": line.quantity}
            )
    if excess:
        raise ReturnExceedsSale("the return exceeds what the sale sold", excess)


def adjust_stock(command: AdjustStock, context: Context) -> list[Change]:
    """Signed corrections with reasons; a decrease may not oversell under `deny`."""
    amounts = [
        Amount(index, line.sku, "delta", line.delta, "non_zero")
        for index, line in enumerate(command.lines)
    ]
    store, _ = admitted(context, command.store_id, command, amounts)
    changes = [
        stock_change(
            StockAdjusted(
                store_id=command.store_id,
                sku=line.sku,
                occurred_at=command.occurred_at,
                delta=line.delta,
                reason=line.reason,
                note=command.note,
            )
        )
        for line in command.lines
    ]
    if store.negative_stock == "deny":
        check_available(context, changes)
    return changes


def set_reorder_point(command: SetReorderPoint, context: Context) -> list[Change]:
    """The low-stock threshold of one item; `maximum`, when given, not below `minimum`."""
    amounts = [Amount(0, command.sku, "min", command.minimum, "non_negative")]
    _, products = admitted(context, command.store_id, command, amounts)
    problems = discontinued_problems(products, [command.sku])
    maximum = command.maximum
    if maximum is not None:
        problem = quantity_problem(maximum, "non_negative", products[command.sku].decimals)
        if problem is None and maximum < command.minimum:
            problem = "must not be below min"
        if problem is not None:
            problems.append({"sku": command.sku, "field": "max", "message": problem})
    reject_if(problems)
    event = StockReorderPointSet(
        store_id=command.store_id,
        sku=command.sku,
        occurred_at=command.occurred_at,
        minimum=command.minimum,
        maximum=maximum,
    )
    return [stock_change(event)]
