"""The command routes: products, stores and every stock command of api.md, on the primary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.params import HeaderParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from inventory.api.errors import PROBLEM_JSON, ApiError, rejection
from inventory.api.schemas import Product, Store
from inventory.domain.authority import Authority
from inventory.domain.commands import Command
from inventory.domain.errors import CommandRejected
from inventory.domain.state import ProductState, StoreState
from inventory.domain.streams import product_stream, store_stream
from inventory.security.principal import Principal
from inventory.service import Actor, CommandService, Decision, Idempotency

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_encode = msgspec.json.Encoder().encode

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        required=False,
        description="Required: 1-255 visible ASCII characters; a retry with the same key and body "
        "answers the first response (with `Idempotent-Replayed: true`).",
    ),
]

OptionalIdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        required=False,
        description="Optional: 1-255 visible ASCII characters; with it, a retry with the same "
        "key and body answers the first response (with `Idempotent-Replayed: true`).",
    ),
]


def now() -> datetime:
    """Server time, the default `occurred_at` of every command."""
    return datetime.now(UTC)


def actor_of(request: Request[Principal, Any, Any]) -> Actor:
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


def authority_of(request: Request[Principal, Any, Any]) -> Authority:
    """The caller as the domain's rules see it: its role, and whether it is a device's key."""
    principal = request.user
    return Authority(role=principal.role.value, api_key=principal.kind == "api_key")


class StockResponder:
    """201 with the command result; a refusal as its problem details."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """The command result of api.md."""
        return HTTP_201_CREATED, _encode(decision.result)

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        """The problem details the first refusal answered."""
        status, problem = rejection(error)
        return status, _encode(problem)


class EntityResponder(StockResponder):
    """The product or store a catalog command created or changed."""

    def __init__(self, stream: str, status: int) -> None:
        self.stream, self.status = stream, status

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """The entity's public view after the command."""
        head = decision.after.head(self.stream)
        state = head.state
        if isinstance(state, ProductState):
            return self.status, _encode(Product.of(state, head.version))
        if isinstance(state, StoreState):
            return self.status, _encode(Store.of(state, head.version))
        raise TypeError(f"{self.stream} is neither a product nor a store")


def idempotency_key(raw: str | None) -> str:
    """The client's key, checked: 400 without one, 422 for a malformed one."""
    if raw is None or raw == "":
        raise ApiError(
            400,
            "idempotency_key_missing",
            f"Stock commands require an {IDEMPOTENCY_HEADER} header.",
        )
    if len(raw) > 255 or not all("!" <= character <= "~" for character in raw):
        raise ApiError(
            422,
            "validation_failed",
            f"{IDEMPOTENCY_HEADER} must be 1-255 visible ASCII characters.",
            errors=[{"field": IDEMPOTENCY_HEADER, "message": "1-255 visible ASCII characters"}],
        )
    return raw


def optional_idempotency_key(raw: str | None) -> str | None:
    """A catalog command's key: optional, but checked like a stock command's when sent."""
    if raw is None:
        return None
    if raw == "":
        raise ApiError(
            422,
            "validation_failed",
            f"{IDEMPOTENCY_HEADER} must be 1-255 visible ASCII characters.",
            errors=[{"field": IDEMPOTENCY_HEADER, "message": "1-255 visible ASCII characters"}],
        )
    return idempotency_key(raw)


async def run_command(
    request: Request[Principal, Any, Any],
    command: Command,
    body: msgspec.Struct,
    *,
    key: str | None,
    responder: StockResponder | None = None,
) -> Response[Any]:
    """Run `command` through the service and answer with what it stored (or replayed)."""
    service: CommandService = request.app.state.service
    idempotency = (
        Idempotency.of(key, request.method, request.url.path, _encode(body)) if key else None
    )
    outcome = await service.handle(
        command, actor_of(request), responder or StockResponder(), idempotency
    )
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    media_type = PROBLEM_JSON if outcome.status >= 400 else "application/json"
    return Response(
        outcome.body, status_code=outcome.status, media_type=media_type, headers=headers
    )


def product_responder(sku: str, status: int = HTTP_200_OK) -> EntityResponder:
    """Answers with the product after the command."""
    return EntityResponder(product_stream(sku), status)


def store_responder(store_id: str, status: int = HTTP_201_CREATED) -> EntityResponder:
    """Answers with the store after the command."""
    return EntityResponder(store_stream(store_id), status)
