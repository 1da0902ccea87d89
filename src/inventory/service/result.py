"""The command result of api.md: the events a command appended and the levels after it."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

import msgspec

from inventory.domain.context import Change, Context
from inventory.domain.state import ProductState, level_of
from inventory.domain.streams import kind_of, product_stream, stock_stream
from inventory.eventstore.positions import mark
from inventory.eventstore.records import Recorded


class LevelView(msgspec.Struct, frozen=True):
    """One item's quantities after the command, with the stock stream's version."""

    store: str
    sku: str
    on_hand: int | str
    reserved: int | str
    available: int | str
    in_transit_in: int | str
    in_transit_out: int | str
    version: int


class EventView(msgspec.Struct, frozen=True):
    """Where one appended event landed."""

    position: int
    stream: str
    version: int
    type: str


class CommandResult(msgspec.Struct, frozen=True):
    """What a command did: the api.md command result."""

    command_id: str
    position: int | None
    events: list[EventView]
    levels: list[LevelView]


def result_of(
    command_id: str, recorded: Sequence[Recorded], changes: Sequence[Change], after: Context
) -> CommandResult:
    """The command result of api.md: where each event landed and each touched item's level."""
    events = [EventView(r.position, r.stream, r.version, r.type) for r in recorded]
    items = {
        change.stream: (change.store, change.sku)
        for change in changes
        if kind_of(change.stream) == "stock" and change.store and change.sku
    }
    levels = [_level(store, sku, after) for store, sku in items.values()]
    levels.sort(key=lambda level: (level.store, level.sku))
    position = max((r.position for r in recorded), default=None)
    return CommandResult(command_id, position, events, levels)


def marked(result: CommandResult) -> CommandResult:
    """`result` with a position mark (eventstore/positions.py) where each position goes:
    rendered before the events have positions, it is filled in with them after."""
    events = [
        msgspec.structs.replace(event, position=_mark(place))
        for place, event in enumerate(result.events, 1)
    ]
    position = _mark(0) if events else None
    return msgspec.structs.replace(result, position=position, events=events)


def _mark(place: int) -> int:
    # A Raw where an int goes: msgspec encodes it as it is, and the mark is filled in
    # with an int before the body leaves the service.
    return cast("int", mark(place))


def _level(store: str, sku: str, after: Context) -> LevelView:
    stock = after.stock(store, sku)
    product = after.heads.get(product_stream(sku))
    decimals = product.state.decimals if product and isinstance(product.state, ProductState) else 0
    level = level_of(stock)
    return LevelView(
        store=store,
        sku=sku,
        on_hand=show_quantity(level.on_hand, decimals),
        reserved=show_quantity(level.reserved, decimals),
        available=show_quantity(level.available, decimals),
        in_transit_in=show_quantity(level.in_transit_in, decimals),
        in_transit_out=show_quantity(level.in_transit_out, decimals),
        version=after.version(stock_stream(store, sku)),
    )


def show_quantity(value: Decimal, decimals: int) -> int | str:
    """api.md: quantities are integers for whole-unit products, strings otherwise."""
    if decimals == 0:
        return int(value)
    return str(value.quantize(Decimal(1).scaleb(-decimals)))
