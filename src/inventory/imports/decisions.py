"""A row's commands, decided with the domain's own deciders against the batch's context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inventory.domain.authority import Authority
from inventory.domain.commands import (
    Command,
    CountLine,
    CountStock,
    RegisterProduct,
    UpdateProduct,
)
from inventory.domain.context import Change, Context
from inventory.domain.decider import decide
from inventory.domain.errors import CommandRejected, ValidationRejected
from inventory.domain.rules import quantity_problem
from inventory.domain.stock_decisions import UNIT_COST_DECIMALS
from inventory.domain.streams import product_stream, stock_stream, store_stream
from inventory.imports.plan import RowOutcome, RowPlan


@dataclass(frozen=True)
class Scope:
    """Who imports, where, when: the store counted at (None: catalog only), the sender's
    authority, the time every command of the import is decided at, and the count's note."""

    store: str | None
    authority: Authority
    now: datetime
    note: str


def streams(plan: RowPlan, scope: Scope) -> tuple[set[str], set[str]]:
    """The streams the row may write, and those it reads."""
    write = {product_stream(plan.sku)}
    read: set[str] = set()
    if plan.on_hand is not None and scope.store is not None:
        write.add(stock_stream(scope.store, plan.sku))
        read.add(store_stream(scope.store))
    return write, read


def decide_row(plan: RowPlan, context: Context, scope: Scope) -> tuple[RowOutcome, list[Change]]:
    """The row's outcome and changes: all of them, or none when any command is refused."""
    try:
        changes: list[Change] = []
        for command in _commands(plan, context, scope):
            changes += decide(command, context.advanced(changes))
    except CommandRejected as error:
        return RowOutcome(plan.line, plan.sku, error.code, _message(error)), []
    return RowOutcome(plan.line, plan.sku, events=len(changes)), changes


def _commands(plan: RowPlan, context: Context, scope: Scope) -> list[Command]:
    commands: list[Command] = []
    product = _product_command(plan, context, scope.now)
    if product is not None:
        commands.append(product)
    if plan.unit_cost is not None:
        problem = quantity_problem(plan.unit_cost, "non_negative", UNIT_COST_DECIMALS)
        if problem is not None:
            raise ValidationRejected("invalid unit_cost", [_field("unit_cost", problem)])
    if plan.on_hand is None:
        return commands
    if scope.store is None:
        message = "an on_hand needs a store: import with --store or ?store="
        raise ValidationRejected("on_hand without a store", [_field("on_hand", message)])
    stock = context.stock(scope.store, plan.sku)
    counted = context.version(stock_stream(scope.store, plan.sku)) > 0
    if not counted or stock.on_hand != plan.on_hand:
        line = CountLine(sku=plan.sku, counted=plan.on_hand)
        note = scope.note if plan.unit_cost is None else f"{scope.note}, unit_cost {plan.unit_cost}"
        count = CountStock(
            store_id=scope.store,
            lines=(line,),
            note=note,
            occurred_at=scope.now,
            authority=scope.authority,
            now=scope.now,
        )
        commands.append(count)
    return commands


def _product_command(
    plan: RowPlan, context: Context, now: datetime
) -> RegisterProduct | UpdateProduct | None:
    """Register a new SKU, update a known one where the row differs, else nothing."""
    product = context.product(plan.sku)
    if not product.exists:
        if plan.name is None:
            raise ValidationRejected("a new SKU needs a name", [_field("name", "required")])
        return RegisterProduct(
            sku=plan.sku,
            name=plan.name,
            description=plan.description,
            barcode=plan.barcode,
            unit=plan.unit or "each",
            decimals=plan.decimals or 0,
            category=plan.category,
            now=now,
        )
    fixed = [
        (name, value, current)
        for name, value, current in (
            ("unit", plan.unit, product.unit),
            ("decimals", plan.decimals, product.decimals),
        )
        if value is not None and value != current
    ]
    if fixed:
        name, value, current = fixed[0]
        message = f"cannot change from {current!r} to {value!r}: {name} is fixed once registered"
        raise ValidationRejected(f"{name} is fixed", [_field(name, message)])
    changes = {
        name: value
        for name in ("name", "description", "barcode", "category")
        if (value := getattr(plan, name)) is not None and value != getattr(product, name)
    }
    if not changes:
        return None
    return UpdateProduct(sku=plan.sku, now=now, **changes)


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


def _message(error: CommandRejected) -> str:
    details = [
        f"{problem.get('field', '')}: {problem['message']}".lstrip(": ")
        for problem in error.errors
        if "message" in problem
    ]
    return "; ".join([error.detail, *details]) if details else error.detail
