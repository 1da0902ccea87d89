"""`decide` and `evolve`: the pure core a command service runs between lock and append.

A service handles a command generically:

1. `document_stream(command)`: if not None, read that stream's state (unlocked);
2. `streams_of(command, document)`: lock `write` exclusively and `read` for share, in one
   sorted statement, and build a `Context` with a head for each (version 0 and the
   initial state for streams without events);
3. `decide(command, context)`: the changes, or a `CommandRejected` to answer with;
   a `StreamNotInContext` means the document appeared meanwhile: run the command again;
4. group the changes by stream, fold each stream's state with `evolve` (or take
   `context.advanced(changes)`), append them with their expected versions.
"""

from __future__ import annotations

from typing import assert_never

from inventory.domain.catalog_decisions import (
    close_period,
    discontinue_product,
    open_new_store,
    register_product,
    update_product,
)
from inventory.domain.commands import (
    AdjustStock,
    CancelTransfer,
    ClosePeriod,
    Command,
    CountStock,
    DiscontinueProduct,
    DispatchTransfer,
    ExpireReservation,
    FulfilReservation,
    OpenStore,
    ReceiveStock,
    ReceiveTransfer,
    RecordReturn,
    RecordSale,
    RegisterProduct,
    ReleaseReservation,
    ReserveStock,
    SetReorderPoint,
    UpdateProduct,
)
from inventory.domain.context import Change, Context, Head, StreamNotInContext, Streams
from inventory.domain.count_decisions import count_stock
from inventory.domain.evolution import evolve, fold
from inventory.domain.reservation_decisions import (
    expire_reservation,
    fulfil_reservation,
    release_reservation,
    reserve_stock,
)
from inventory.domain.routing import document_stream, streams_of
from inventory.domain.stock_decisions import (
    adjust_stock,
    receive_stock,
    record_return,
    record_sale,
    set_reorder_point,
)
from inventory.domain.transfer_decisions import (
    cancel_transfer,
    dispatch_transfer,
    receive_transfer,
)

__all__ = [
    "Change",
    "Context",
    "Head",
    "StreamNotInContext",
    "Streams",
    "decide",
    "document_stream",
    "evolve",
    "fold",
    "streams_of",
]


def decide(command: Command, context: Context) -> list[Change]:
    """The changes `command` makes given `context`; raises a CommandRejected subclass."""
    match command:
        case (
            RegisterProduct() | UpdateProduct() | DiscontinueProduct() | OpenStore() | ClosePeriod()
        ):
            return decide_catalog(command, context)
        case (
            ReceiveStock()
            | RecordSale()
            | RecordReturn()
            | AdjustStock()
            | CountStock()
            | SetReorderPoint()
        ):
            return decide_stock(command, context)
        case ReserveStock() | ReleaseReservation() | ExpireReservation() | FulfilReservation():
            return decide_reservation(command, context)
        case DispatchTransfer() | ReceiveTransfer() | CancelTransfer():
            return decide_transfer(command, context)
        case _:
            assert_never(command)


def decide_catalog(
    command: RegisterProduct | UpdateProduct | DiscontinueProduct | OpenStore | ClosePeriod,
    context: Context,
) -> list[Change]:
    """The catalog and store commands."""
    match command:
        case RegisterProduct():
            return register_product(command, context)
        case UpdateProduct():
            return update_product(command, context)
        case DiscontinueProduct():
            return discontinue_product(command, context)
        case OpenStore():
            return open_new_store(command, context)
        case ClosePeriod():
            return close_period(command, context)
        case _:
            assert_never(command)


def decide_stock(
    command: ReceiveStock | RecordSale | RecordReturn | AdjustStock | CountStock | SetReorderPoint,
    context: Context,
) -> list[Change]:
    """The one-store stock commands."""
    match command:
        case ReceiveStock():
            return receive_stock(command, context)
        case RecordSale():
            return record_sale(command, context)
        case RecordReturn():
            return record_return(command, context)
        case AdjustStock():
            return adjust_stock(command, context)
        case CountStock():
            return count_stock(command, context)
        case SetReorderPoint():
            return set_reorder_point(command, context)
        case _:
            assert_never(command)


def decide_reservation(
    command: ReserveStock | ReleaseReservation | ExpireReservation | FulfilReservation,
    context: Context,
) -> list[Change]:
    """The reservation commands."""
    match command:
        case ReserveStock():
            return reserve_stock(command, context)
        case ReleaseReservation():
            return release_reservation(command, context)
        case ExpireReservation():
            return expire_reservation(command, context)
        case FulfilReservation():
            return fulfil_reservation(command, context)
        case _:
            assert_never(command)


def decide_transfer(
    command: DispatchTransfer | ReceiveTransfer | CancelTransfer, context: Context
) -> list[Change]:
    """The transfer commands."""
    match command:
        case DispatchTransfer():
            return dispatch_transfer(command, context)
        case ReceiveTransfer():
            return receive_transfer(command, context)
        case CancelTransfer():
            return cancel_transfer(command, context)
        case _:
            assert_never(command)
