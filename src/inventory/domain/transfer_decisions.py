"""Decisions on transfers: dispatch, receive in parts, cancel what has not arrived."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from inventory.domain.admission import admitted, document_change, stock_change
from inventory.domain.commands import CancelTransfer, DispatchTransfer, ReceiveTransfer
from inventory.domain.context import Change, Context
from inventory.domain.errors import (
    DuplicateTransfer,
    TransferNotFound,
    TransferNotOpen,
    ValidationRejected,
)
from inventory.domain.events import (
    Line,
    StockTransferCancelled,
    StockTransferDelivered,
    StockTransferDispatched,
    StockTransferIncoming,
    StockTransferReceived,
    StockTransferWithdrawn,
    TransferCancelled,
    TransferDispatched,
    TransferReceived,
)
from inventory.domain.rules import (
    check_available,
    check_dated,
    open_store,
    reject_if,
    time_problems,
)
from inventory.domain.state import ZERO, TransferState
from inventory.domain.stock_decisions import line_amounts
from inventory.domain.streams import transfer_stream


def dispatch_transfer(command: DispatchTransfer, context: Context) -> list[Change]:
    """Stock leaves the source (refused under its `deny` when short) towards the destination."""
    if command.from_store == command.to_store:
        raise ValidationRejected(
            "a transfer needs two different stores",
            [{"field": "to_store", "message": "must differ from from_store"}],
        )
    amounts = line_amounts(command.lines)
    source, _ = admitted(context, command.from_store, command, amounts)
    destination = open_store(context, command.to_store)
    check_dated(destination, command.occurred_at, command.now, command.authority)
    if context.transfer(command.transfer_id).exists:
        raise DuplicateTransfer(
            f"transfer {command.transfer_id!r} already exists",
            [{"transfer_id": command.transfer_id}],
        )
    outgoing, incoming = legs(command)
    if source.negative_stock == "deny":
        check_available(context, outgoing)
    at = command.occurred_at
    dispatched = TransferDispatched(
        transfer_id=command.transfer_id,
        from_store=command.from_store,
        to_store=command.to_store,
        lines=command.lines,
        occurred_at=at,
    )
    stream = transfer_stream(command.transfer_id)
    return [
        *outgoing,
        *incoming,
        document_change(stream, dispatched, command.from_store, at, new=True),
    ]


def legs(command: DispatchTransfer) -> tuple[list[Change], list[Change]]:
    """The stock changes of a dispatch: leaving the source, expected at the destination."""
    outgoing = [
        stock_change(
            StockTransferDispatched(
                store_id=command.from_store,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                transfer_id=command.transfer_id,
                to_store=command.to_store,
            )
        )
        for line in command.lines
    ]
    incoming = [
        stock_change(
            StockTransferIncoming(
                store_id=command.to_store,
                sku=line.sku,
                occurred_at=command.occurred_at,
                quantity=line.quantity,
                transfer_id=command.transfer_id,
                from_store=command.from_store,
            )
        )
        for line in command.lines
    ]
    return outgoing, incoming


def open_transfer(context: Context, transfer_id: str) -> TransferState:
    """The transfer a receipt or cancel acts on: it must exist and still be open."""
    transfer = context.transfer(transfer_id)
    if not transfer.exists:
        raise TransferNotFound(f"no transfer {transfer_id!r}", [{"transfer_id": transfer_id}])
    if transfer.status != "open":
        raise TransferNotOpen(
            f"transfer {transfer_id!r} is {transfer.status}",
            [{"transfer_id": transfer_id, "status": transfer.status}],
        )
    return transfer


def outstanding(transfer: TransferState, sku: str) -> Decimal:
    """What of `sku` was dispatched and has not arrived yet."""
    return transfer.dispatched.get(sku, ZERO) - transfer.received.get(sku, ZERO)


def receive_transfer(command: ReceiveTransfer, context: Context) -> list[Change]:
    """Part or all of what is outstanding arrives at the destination, never more."""
    transfer = open_transfer(context, command.transfer_id)
    reject_if(
        [
            {"line": index, "sku": line.sku, "message": "not part of this transfer"}
            for index, line in enumerate(command.lines)
            if line.sku not in transfer.dispatched
        ]
    )
    admitted(context, transfer.to_store, command, line_amounts(command.lines))
    # The arrival is also an event at the source (out of transit there): its books count too.
    source = open_store(context, transfer.from_store)
    check_dated(source, command.occurred_at, command.now, command.authority)
    reject_if(
        [
            {
                "line": index,
                "sku": line.sku,
                "message": "exceeds what is outstanding",
                "outstanding": outstanding(transfer, line.sku),
                "requested": line.quantity,
            }
            for index, line in enumerate(command.lines)
            if line.quantity > outstanding(transfer, line.sku)
        ]
    )
    return [
        *moves_of(transfer, command.lines, command.occurred_at, cancelled=False),
        document_change(
            transfer_stream(command.transfer_id),
            TransferReceived(
                transfer_id=command.transfer_id,
                lines=command.lines,
                occurred_at=command.occurred_at,
            ),
            transfer.from_store,
            command.occurred_at,
        ),
    ]


def cancel_transfer(command: CancelTransfer, context: Context) -> list[Change]:
    """Stop the transfer: what has not arrived goes back to the source."""
    transfer = open_transfer(context, command.transfer_id)
    reject_if(time_problems(command.occurred_at))
    for store_id in (transfer.from_store, transfer.to_store):
        store = open_store(context, store_id)
        check_dated(store, command.occurred_at, command.now, command.authority)
    remainder = tuple(
        Line(sku, outstanding(transfer, sku))
        for sku in transfer.dispatched
        if outstanding(transfer, sku) > 0
    )
    cancelled = TransferCancelled(
        transfer_id=command.transfer_id, lines=remainder, occurred_at=command.occurred_at
    )
    return [
        *moves_of(transfer, remainder, command.occurred_at, cancelled=True),
        document_change(
            transfer_stream(command.transfer_id),
            cancelled,
            transfer.from_store,
            command.occurred_at,
        ),
    ]


def moves_of(
    transfer: TransferState, lines: tuple[Line, ...], at: datetime, *, cancelled: bool
) -> list[Change]:
    """Stock changes at both ends: arrival (out of transit at the source, on hand at the
    destination) or return (on hand again at the source, out of transit at the destination).
    """
    source_event = StockTransferCancelled if cancelled else StockTransferDelivered
    destination_event = StockTransferWithdrawn if cancelled else StockTransferReceived
    changes: list[Change] = []
    for line in lines:
        source = source_event(
            store_id=transfer.from_store,
            sku=line.sku,
            occurred_at=at,
            quantity=line.quantity,
            transfer_id=transfer.transfer_id,
            to_store=transfer.to_store,
        )
        destination = destination_event(
            store_id=transfer.to_store,
            sku=line.sku,
            occurred_at=at,
            quantity=line.quantity,
            transfer_id=transfer.transfer_id,
            from_store=transfer.from_store,
        )
        changes += [stock_change(source), stock_change(destination)]
    return changes
