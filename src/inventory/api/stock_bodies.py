"""Request bodies of the stock commands (api.md), each with the domain command it maps to.

`to_command` takes what the body does not hold: the ids from the path, the sender's
`Authority` and `at`, the server time the command is decided at (the default `occurred_at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from inventory.api.schemas import (
    Body,
    Identifier,
    LongText,
    OccurredAt,
    Quantity,
    Reason,
    Sku,
    Text,
)
from inventory.domain import commands as domain
from inventory.domain.authority import Authority
from inventory.domain.window import EXPIRY_TEXT, UNTIL_TEXT


class Line(Body):
    """A SKU and a quantity."""

    sku: Sku
    quantity: Quantity


class ReceiptLine(Line):
    """A received SKU, optionally with its unit cost."""

    unit_cost: Quantity | None = None


class AdjustmentLine(Body):
    """A signed correction with its reason."""

    sku: Sku
    delta: Quantity
    reason: Reason


class CountLine(Body):
    """A counted SKU; `expected_version` guards the absolute set."""

    sku: Sku
    counted: Quantity
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


Lines = Annotated[list[Line], msgspec.Meta(min_length=1, max_length=1000)]


def lines(body: list[Line]) -> tuple[domain.Line, ...]:
    """Domain lines of request lines."""
    return tuple(domain.Line(line.sku, line.quantity) for line in body)


class Receipt(Body):
    """POST /v1/stores/{store}/receipts."""

    lines: Annotated[list[ReceiptLine], msgspec.Meta(min_length=1, max_length=1000)]
    reference: Text | None = None
    occurred_at: OccurredAt | None = None
    note: LongText | None = None

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.ReceiveStock:
        """Stock delivered to `store`."""
        receipt = tuple(
            domain.ReceiptLine(sku=line.sku, quantity=line.quantity, unit_cost=line.unit_cost)
            for line in self.lines
        )
        return domain.ReceiveStock(
            store_id=store,
            lines=receipt,
            reference=self.reference,
            note=self.note,
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class Sale(Body):
    """POST /v1/stores/{store}/sales."""

    sale_id: Identifier
    lines: Lines
    occurred_at: OccurredAt | None = None
    offline: bool = False

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.RecordSale:
        """A sale at `store`."""
        return domain.RecordSale(
            store_id=store,
            sale_id=self.sale_id,
            lines=lines(self.lines),
            offline=self.offline,
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class Return(Body):
    """POST /v1/stores/{store}/returns."""

    sale_id: Identifier
    lines: Lines
    restock: bool = True
    occurred_at: OccurredAt | None = None

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.RecordReturn:
        """A return at `store` against an earlier sale."""
        return domain.RecordReturn(
            store_id=store,
            sale_id=self.sale_id,
            lines=lines(self.lines),
            restock=self.restock,
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class Adjustment(Body):
    """POST /v1/stores/{store}/adjustments."""

    lines: Annotated[list[AdjustmentLine], msgspec.Meta(min_length=1, max_length=1000)]
    note: LongText | None = None
    occurred_at: OccurredAt | None = None

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.AdjustStock:
        """Signed corrections at `store`."""
        adjustments = tuple(
            domain.AdjustmentLine(sku=line.sku, delta=line.delta, reason=line.reason)
            for line in self.lines
        )
        return domain.AdjustStock(
            store_id=store,
            lines=adjustments,
            note=self.note,
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class Count(Body):
    """POST /v1/stores/{store}/counts."""

    lines: Annotated[list[CountLine], msgspec.Meta(min_length=1, max_length=1000)]
    occurred_at: OccurredAt | None = None
    note: LongText | None = None

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.CountStock:
        """A shelf count at `store`."""
        counted = tuple(
            domain.CountLine(
                sku=line.sku, counted=line.counted, expected_version=line.expected_version
            )
            for line in self.lines
        )
        return domain.CountStock(
            store_id=store,
            lines=counted,
            note=self.note,
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class Reservation(Body):
    """POST /v1/stores/{store}/reservations."""

    reservation_id: Identifier
    lines: Lines
    expires_at: Annotated[datetime, msgspec.Meta(description=EXPIRY_TEXT)] | None = None

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.ReserveStock:
        """Hold stock at `store`, from now."""
        return domain.ReserveStock(
            store_id=store,
            reservation_id=self.reservation_id,
            lines=lines(self.lines),
            expires_at=self.expires_at,
            occurred_at=at,
            now=at,
            authority=sender,
        )


class Empty(Body):
    """`{}`: release a reservation, cancel a transfer."""


class Fulfilment(Body):
    """POST /v1/stores/{store}/reservations/{id}/fulfil."""

    sale_id: Identifier

    def to_command(
        self, store: str, reservation_id: str, sender: Authority, at: datetime
    ) -> domain.FulfilReservation:
        """Turn the reservation into the sale `sale_id`, now."""
        return domain.FulfilReservation(
            store_id=store,
            reservation_id=reservation_id,
            sale_id=self.sale_id,
            occurred_at=at,
            now=at,
            authority=sender,
        )


class ReorderPoint(Body):
    """PUT /v1/stores/{store}/stock/{sku}/reorder-point."""

    min: Quantity
    max: Quantity | None = None

    def to_command(
        self, store: str, sku: str, sender: Authority, at: datetime
    ) -> domain.SetReorderPoint:
        """The reorder point of `sku` at `store`, from now."""
        return domain.SetReorderPoint(
            store_id=store,
            sku=sku,
            minimum=self.min,
            maximum=self.max,
            occurred_at=at,
            now=at,
            authority=sender,
        )


class PeriodClose(Body):
    """POST /v1/stores/{store}/period-close."""

    until: Annotated[datetime, msgspec.Meta(description=UNTIL_TEXT)]

    def to_command(self, store: str, sender: Authority, at: datetime) -> domain.ClosePeriod:
        """Close `store`'s books until `until`."""
        return domain.ClosePeriod(
            store_id=store, until=self.until, occurred_at=at, now=at, authority=sender
        )


class Transfer(Body):
    """POST /v1/transfers."""

    transfer_id: Identifier
    from_store: Identifier
    to_store: Identifier
    lines: Lines
    occurred_at: OccurredAt | None = None

    def to_command(self, sender: Authority, at: datetime) -> domain.DispatchTransfer:
        """Stock leaving `from_store` for `to_store`."""
        return domain.DispatchTransfer(
            transfer_id=self.transfer_id,
            from_store=self.from_store,
            to_store=self.to_store,
            lines=lines(self.lines),
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )


class TransferReceipt(Body):
    """POST /v1/transfers/{id}/receive (part or all of what is outstanding)."""

    lines: Lines
    occurred_at: OccurredAt | None = None

    def to_command(
        self, transfer_id: str, sender: Authority, at: datetime
    ) -> domain.ReceiveTransfer:
        """What arrived of the transfer."""
        return domain.ReceiveTransfer(
            transfer_id=transfer_id,
            lines=lines(self.lines),
            occurred_at=self.occurred_at or at,
            now=at,
            authority=sender,
        )
