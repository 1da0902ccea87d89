"""POST/PUT routes of every stock command (api.md "Stock commands"), each one transaction."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from inventory.api import stock_bodies as bodies
from inventory.api.commands import IdempotencyKey, authority_of, idempotency_key, now, run_command
from inventory.api.errors import Problem
from inventory.domain import commands as domain
from inventory.domain.commands import Command
from inventory.security.policy import RouteClass, protect, require_store
from inventory.security.principal import Principal
from inventory.service import CommandService
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
Result = Response[CommandResult]


async def _run(request: ApiRequest, command: Command, body: Any, key: str | None) -> Result:
    return await run_command(request, command, body, key=idempotency_key(key))


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
        data: JSONBody[bodies.Receipt],
        key: IdempotencyKey = None,
    ) -> Result:
        """Stock delivered to the store."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/sales", summary="Record a sale", **CLERK)
    async def sell(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.Sale],
        key: IdempotencyKey = None,
    ) -> Result:
        """A sale of one or more lines, all or nothing; `offline` sales are always recorded."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/returns", summary="Record a return", **CLERK)
    async def return_(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.Return],
        key: IdempotencyKey = None,
    ) -> Result:
        """Lines of an earlier sale coming back, at most what it sold less what came back."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/adjustments", summary="Adjust stock", **MANAGER)
    async def adjust(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.Adjustment],
        key: IdempotencyKey = None,
    ) -> Result:
        """Signed corrections, each with a reason."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/counts", summary="Record a count", **CLERK)
    async def count(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.Count],
        key: IdempotencyKey = None,
    ) -> Result:
        """A shelf count: it anchors on_hand for the SKUs it lists and nothing else."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/reservations", summary="Reserve stock", **CLERK)
    async def reserve(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.Reservation],
        key: IdempotencyKey = None,
    ) -> Result:
        """Hold available stock until released, expired (`expires_at`) or fulfilled."""
        command = data.to_command(store, authority_of(request), now())
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
        data: JSONBody[bodies.Empty],
        key: IdempotencyKey = None,
    ) -> Result:
        """Give the held stock back to `available`."""
        at, sender = now(), authority_of(request)
        command = domain.ReleaseReservation(
            store_id=store, reservation_id=reservation_id, occurred_at=at, now=at, authority=sender
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
        data: JSONBody[bodies.Fulfilment],
        key: IdempotencyKey = None,
    ) -> Result:
        """Turn the reservation into the sale `sale_id`."""
        command = data.to_command(store, reservation_id, authority_of(request), now())
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
        data: JSONBody[bodies.ReorderPoint],
        key: IdempotencyKey = None,
    ) -> Result:
        """The level below which `available` raises a low-stock alert."""
        command = data.to_command(store, sku, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/stores/{store:str}/period-close", summary="Close a period", **MANAGER)
    async def close_period(
        self,
        request: ApiRequest,
        store: str,
        data: JSONBody[bodies.PeriodClose],
        key: IdempotencyKey = None,
    ) -> Result:
        """Refuse events dated at or before `until` from now on (409 `period_closed`)."""
        command = data.to_command(store, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/transfers", summary="Dispatch a transfer", **TRANSFER)
    async def dispatch(
        self,
        request: ApiRequest,
        data: JSONBody[bodies.Transfer],
        key: IdempotencyKey = None,
    ) -> Result:
        """Stock leaves `from_store` and is in transit to `to_store`."""
        require_store(request.user, data.from_store, data.to_store)
        command = data.to_command(authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/transfers/{transfer_id:str}/receive", summary="Receive a transfer", **TRANSFER)
    async def receive_transfer(
        self,
        request: ApiRequest,
        transfer_id: str,
        data: JSONBody[bodies.TransferReceipt],
        key: IdempotencyKey = None,
    ) -> Result:
        """Part or all of what is outstanding arrives at the destination."""
        await require_transfer_scope(request, transfer_id)
        command = data.to_command(transfer_id, authority_of(request), now())
        return await _run(request, command, data, key)

    @post("/transfers/{transfer_id:str}/cancel", summary="Cancel a transfer", **TRANSFER)
    async def cancel_transfer(
        self,
        request: ApiRequest,
        transfer_id: str,
        data: JSONBody[bodies.Empty],
        key: IdempotencyKey = None,
    ) -> Result:
        """What has not arrived goes back to the source."""
        await require_transfer_scope(request, transfer_id)
        at, sender = now(), authority_of(request)
        command = domain.CancelTransfer(
            transfer_id=transfer_id, occurred_at=at, now=at, authority=sender
        )
        return await _run(request, command, data, key)


async def require_transfer_scope(request: ApiRequest, transfer_id: str) -> None:
    """403 unless both stores of an existing transfer are in the caller's scope."""
    service: CommandService = request.app.state.service
    stores = await service.transfer_stores(transfer_id)
    if stores is not None:
        require_store(request.user, *stores)
