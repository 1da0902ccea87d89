"""Which streams a command appends to and which it only reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

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
from inventory.domain.context import Streams
from inventory.domain.state import ReservationState, State, TransferState
from inventory.domain.streams import (
    product_stream,
    reservation_stream,
    sale_stream,
    stock_stream,
    store_stream,
    transfer_stream,
)

DocumentCommand = (
    ReceiveTransfer | CancelTransfer | ReleaseReservation | ExpireReservation | FulfilReservation
)


def document_stream(command: Command) -> str | None:
    """The stream whose state names the rest of a command's streams, if any.

    Read it before locking (no lock needed: a document's stores and lines never change
    once written) and pass its state to `streams_of`.
    """
    match command:
        case ReceiveTransfer() | CancelTransfer():
            return transfer_stream(command.transfer_id)
        case ReleaseReservation() | ExpireReservation() | FulfilReservation():
            return reservation_stream(command.store_id, command.reservation_id)
        case _:
            return None


def stock_streams(store_id: str, skus: Iterable[str]) -> frozenset[str]:
    """The stock streams of `skus` at one store."""
    return frozenset(stock_stream(store_id, sku) for sku in skus)


def products(skus: Iterable[str]) -> frozenset[str]:
    """The product streams of `skus`."""
    return frozenset(product_stream(sku) for sku in skus)


def streams_of(command: Command, document: State | None = None) -> Streams:
    """The streams `command` appends to (`write`) and only reads (`read`).

    Store and product streams are only read by stock commands, so the service can lock
    them FOR SHARE and sales in one store do not queue on the store's row.
    """
    match command:
        case RegisterProduct() | UpdateProduct() | DiscontinueProduct():
            return Streams(frozenset({product_stream(command.sku)}))
        case OpenStore() | ClosePeriod():
            return Streams(frozenset({store_stream(command.store_id)}))
        case (
            SetReorderPoint()
            | ReceiveStock()
            | AdjustStock()
            | CountStock()
            | RecordSale()
            | RecordReturn()
            | ReserveStock()
        ):
            return line_streams(command)
        case DispatchTransfer():
            return dispatch_streams(command)
        case (
            ReceiveTransfer()
            | CancelTransfer()
            | ReleaseReservation()
            | ExpireReservation()
            | FulfilReservation()
        ):
            return document_streams(command, document)
        case _:
            assert_never(command)


def line_streams(
    command: SetReorderPoint
    | ReceiveStock
    | AdjustStock
    | CountStock
    | RecordSale
    | RecordReturn
    | ReserveStock,
) -> Streams:
    """A one-store command: its stock streams, plus the sale or reservation it records."""
    if isinstance(command, SetReorderPoint):
        skus = [command.sku]
    else:
        skus = [line.sku for line in command.lines]
    write = stock_streams(command.store_id, skus)
    if isinstance(command, RecordSale | RecordReturn):
        write |= {sale_stream(command.store_id, command.sale_id)}
    if isinstance(command, ReserveStock):
        write |= {reservation_stream(command.store_id, command.reservation_id)}
    return Streams(write, products(skus) | {store_stream(command.store_id)})


def dispatch_streams(command: DispatchTransfer) -> Streams:
    """Source and destination stock streams and the new transfer document."""
    skus = [line.sku for line in command.lines]
    write = (
        stock_streams(command.from_store, skus)
        | stock_streams(command.to_store, skus)
        | {transfer_stream(command.transfer_id)}
    )
    stores = {store_stream(command.from_store), store_stream(command.to_store)}
    return Streams(write, products(skus) | stores)


def document_streams(command: DocumentCommand, document: State | None) -> Streams:
    """A command on an existing document: the streams its (immutable) lines name.

    Without the document (or when it does not exist) only the document itself: the
    decision then refuses the command as not found.
    """
    own = document_stream(command)
    assert own is not None
    if isinstance(document, TransferState) and document.exists:
        skus = list(document.dispatched)
        write = stock_streams(document.from_store, skus) | stock_streams(document.to_store, skus)
        stores = {store_stream(document.from_store), store_stream(document.to_store)}
        return Streams(write | {own}, products(skus) | stores)
    if isinstance(document, ReservationState) and document.exists:
        write = stock_streams(document.store_id, document.lines) | {own}
        if isinstance(command, FulfilReservation):
            write |= {sale_stream(command.store_id, command.sale_id)}
        return Streams(write, products(document.lines) | {store_stream(document.store_id)})
    if isinstance(command, ReceiveTransfer | CancelTransfer):
        return Streams(frozenset({own}))
    return Streams(frozenset({own}), frozenset({store_stream(command.store_id)}))
