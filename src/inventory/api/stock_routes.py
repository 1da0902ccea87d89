"""POST/PUT routes of every stock command (api.md "Stock commands"), each one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from litestar import Controller, Request, Response, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from inventory.api import schemas
from inventory.api.commands import IdempotencyKey, idempotency_key, now, run_command
from inventory.api.errors import Problem
from inventory.domain import commands as domain
from inventory.domain.authority import Authority
from inventory.domain.commands import Command
from inventory.domain.events import Line
from inventory.security.policy import RouteClass, protect, require_store
from inventory.security.principal import Principal
from inventory.service import Actor, CommandService
from inventory.service.result import CommandResult

ApiRequest = Request[Principal, Any, State]

PROBLEM = ResponseSpec(Problem, description="A problem", media_type="application/problem+json")
RESPONSES = {
    400: ResponseSpec(Problem, description="No Idempotency-Key, or malformed JSON"),
    404: ResponseSpec(Problem, description="Unknown store, product, sale, reservation, transfer"),
    409: ResponseSpec(
        Problem,
        description="insufficient_stock, version_conflict, period_closed, duplicate_sale, "
        "return_exceeds_sale, reservation_not_active, transfer_not_open",
    ),
    422: ResponseSpec(
        Problem,
        description="validation_failed, occurred_at_out_of_range (the business-time window, "
        "in `errors`), idempotency_key_reused",
    ),
}
CLERK = {**protect(RouteClass.STOCK_COMMAND, store="store", responses=RESPONSES)}
MANAGER = {**protect(RouteClass.MANAGER_COMMAND, store="store", responses=RESPONSES)}
TRANSFER = {**protect(RouteClass.MANAGER_COMMAND, responses=RESPONSES)}


def actor_of(request: ApiRequest) -> Actor:
    """The caller as the events' metadata names it."""
    principal = request.user
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return Actor(
        id=principal.id,
        kind=principal.kind,
        name=principal.name,
        role=principal.role.value,
        ip=principal.ip,
        request_id=request_id,
        correlation_id=request.headers.get("x-correlation-id") or request_id,
        causation_id=request.headers.get("x-causation-id"),
    )


def authority_of(request: ApiRequest) -> Authority:
    """The caller as the domain's rules see it: its role, and whether it is a device's key."""
    principal = request.user
    return Authority(role=principal.role.value, api_key=principal.kind == "api_key")


def lines(body: list[schemas.Line]) -> tuple[Line, ...]:
    """Domain lines of request lines."""
    return tuple(Line(line.sku, line.quantity) for line in body)


def when(occurred_at: datetime | None, at: datetime) -> datetime:
    """`occurred_at`, defaulting to the server time (api.md)."""
    return occurred_at or at


async def _run(request: ApiRequest, command: Command, body: Any, key: str | None) -> Response[Any]:
    checked = idempotency_key(key)
    return await run_command(request, actor_of(request), command, body, key=checked)


class StockCommandController(Controller):
    """Receipts, sales, returns, adjustments, counts, reservations, reorder points,
    period closes and transfers: 201 with the command result."""

    path = "/v1"
    tags = ("stock commands",)

    @post("/stores/{store:str}/receipts", summary="Receive stock", **CLERK)
    async def receive(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Receipt],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Stock delivered to the store."""
        at = now()
        receipt = tuple(
            domain.ReceiptLine(sku=line.sku, quantity=line.quantity, unit_cost=line.unit_cost)
            for line in data.lines
        )
        command = domain.ReceiveStock(
            store_id=store,
            lines=receipt,
            reference=data.reference,
            note=data.note,
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/sales", summary="Record a sale", **CLERK)
    async def sell(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Sale],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """A sale of one or more lines, all or nothing; `offline` sales are always recorded."""
        at = now()
        command = domain.RecordSale(
            store_id=store,
            sale_id=data.sale_id,
            lines=lines(data.lines),
            offline=data.offline,
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/returns", summary="Record a return", **CLERK)
    async def return_(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Return],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Lines of an earlier sale coming back, at most what it sold less what came back."""
        at = now()
        command = domain.RecordReturn(
            store_id=store,
            sale_id=data.sale_id,
            lines=lines(data.lines),
            restock=data.restock,
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/adjustments", summary="Adjust stock", **MANAGER)
    async def adjust(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Adjustment],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Signed corrections, each with a reason."""
        at = now()
        adjustments = tuple(
            domain.AdjustmentLine(sku=line.sku, delta=line.delta, reason=line.reason)
            for line in data.lines
        )
        command = domain.AdjustStock(
            store_id=store,
            lines=adjustments,
            note=data.note,
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/counts", summary="Record a count", **CLERK)
    async def count(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Count],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """A shelf count: it anchors on_hand for the SKUs it lists and nothing else."""
        at = now()
        counted = tuple(
            domain.CountLine(
                sku=line.sku, counted=line.counted, expected_version=line.expected_version
            )
            for line in data.lines
        )
        command = domain.CountStock(
            store_id=store,
            lines=counted,
            note=data.note,
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/reservations", summary="Reserve stock", **CLERK)
    async def reserve(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.Reservation],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Hold available stock until released, expired (`expires_at`) or fulfilled."""
        at = now()
        command = domain.ReserveStock(
            store_id=store,
            reservation_id=data.reservation_id,
            lines=lines(data.lines),
            expires_at=data.expires_at,
            occurred_at=at,
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post(
        "/stores/{store:str}/reservations/{reservation_id:str}/release",
        summary="Release a reservation",
        **CLERK,
    )
    async def release(
        self,
        request: ApiRequest,
        store: str,
        reservation_id: str,
        data: JSONBody[schemas.Empty],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Give the held stock back to `available`."""
        at = now()
        command = domain.ReleaseReservation(
            store_id=store,
            reservation_id=reservation_id,
            occurred_at=at,
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post(
        "/stores/{store:str}/reservations/{reservation_id:str}/fulfil",
        summary="Fulfil a reservation as a sale",
        **CLERK,
    )
    async def fulfil(
        self,
        request: ApiRequest,
        store: str,
        reservation_id: str,
        data: JSONBody[schemas.Fulfilment],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Turn the reservation into the sale `sale_id`."""
        at = now()
        command = domain.FulfilReservation(
            store_id=store,
            reservation_id=reservation_id,
            sale_id=data.sale_id,
            occurred_at=at,
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @put(
        "/stores/{store:str}/stock/{sku:str}/reorder-point",
        summary="Set a reorder point",
        status_code=201,
        **MANAGER,
    )
    async def reorder_point(
        self,
        request: ApiRequest,
        store: str,
        sku: str,
        data: JSONBody[schemas.ReorderPoint],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """The level below which `available` raises a low-stock alert."""
        at = now()
        command = domain.SetReorderPoint(
            store_id=store,
            sku=sku,
            minimum=data.min,
            maximum=data.max,
            occurred_at=at,
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/period-close", summary="Close a period", **MANAGER)
    async def close_period(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[schemas.PeriodClose],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Refuse events dated at or before `until` from now on (409 `period_closed`)."""
        at = now()
        command = domain.ClosePeriod(
            store_id=store,
            until=data.until,
            occurred_at=at,
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/transfers", summary="Dispatch a transfer", **TRANSFER)
    async def dispatch(
        self,
        request: ApiRequest,
        data: JSONBody[schemas.Transfer],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Stock leaves `from_store` and is in transit to `to_store`."""
        require_store(request.user, data.from_store, data.to_store)
        at = now()
        command = domain.DispatchTransfer(
            transfer_id=data.transfer_id,
            from_store=data.from_store,
            to_store=data.to_store,
            lines=lines(data.lines),
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/transfers/{transfer_id:str}/receive", summary="Receive a transfer", **TRANSFER)
    async def receive_transfer(
        self,
        request: ApiRequest,
        transfer_id: str,
        data: JSONBody[schemas.TransferReceipt],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """Part or all of what is outstanding arrives at the destination."""
        await require_transfer_scope(request, transfer_id)
        at = now()
        command = domain.ReceiveTransfer(
            transfer_id=transfer_id,
            lines=lines(data.lines),
            occurred_at=when(data.occurred_at, at),
            now=at,
            authority=authority_of(request),
        )
        return await _run(request, command, data, key)

    @post("/transfers/{transfer_id:str}/cancel", summary="Cancel a transfer", **TRANSFER)
    async def cancel_transfer(
        self,
        request: ApiRequest,
        transfer_id: str,
        data: JSONBody[schemas.Empty],
        key: str | None = IdempotencyKey,
    ) -> Response[CommandResult]:
        """What has not arrived goes back to the source."""
        await require_transfer_scope(request, transfer_id)
        at = now()
        command = domain.CancelTransfer(
            transfer_id=transfer_id, occurred_at=at, now=at, authority=authority_of(request)
        )
        return await _run(request, command, data, key)


async def require_transfer_scope(request: ApiRequest, transfer_id: str) -> None:
    """403 unless both stores of an existing transfer are in the caller's scope."""
    service: CommandService = request.app.state.service
    stores = await service.transfer_stores(transfer_id)
    if stores is not None:
        require_store(request.user, *stores)
