"""Webhook subscriptions (api.md, Webhooks): create, list, delete, rotate, test, log."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from inventory.api.errors import ApiError, Problem
from inventory.api.schemas import Body, Page
from inventory.domain.events import ALL_EVENTS
from inventory.readmodels import webhook_source
from inventory.security.policy import RouteClass, protect
from inventory.security.principal import ALL_STORES, Principal, check_scope
from inventory.webhooks import messages, signing, subscriptions, targets
from inventory.webhooks.wakeups import wake

ApiRequest = Request[Principal, Any, State]
PROBLEM = ResponseSpec(Problem)
TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z_]+$")
KNOWN_TYPES = frozenset(
    {event.__struct_config__.tag for event in ALL_EVENTS} | {messages.ALERT_OPENED}
) - {None}
Limit = Annotated[int, Parameter(ge=1, le=1000, description="Page size (default 100).")]
StoreFilter = Annotated[str | None, Parameter(description="Store id(s), comma-separated.")]


class NewWebhook(Body):
    """POST /v1/webhooks: stores default to the caller's scope, types to every type."""

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=targets.MAX_URL_LENGTH)]
    stores: Annotated[list[str], msgspec.Meta(min_length=1, max_length=1000)] | None = None
    types: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=512)] | None = None


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription; `types` null means every type; `status` active or disabled."""

    id: str
    url: str
    stores: list[str]
    types: list[str] | None
    description: str | None
    status: str
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class CreatedWebhook(Webhook, frozen=True, kw_only=True):
    """A new subscription with its signing secret, shown this once."""

    secret: str


class RotatedSecret(msgspec.Struct, frozen=True):
    """The new signing secret; the previous one keeps signing for 24 hours."""

    secret: str


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    """One message of the delivery log."""

    webhook_id: str
    seq: int | None
    type: str
    attempts: int
    status: str
    last_status_code: int | None
    next_attempt_at: datetime | None


def _view(row: subscriptions.Listed) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        stores=row.stores,
        types=row.types,
        description=row.description,
        status="disabled" if row.disabled_at else "active",
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        disabled_reason=row.disabled_reason,
    )


def _scope(principal: Principal) -> list[str] | None:
    return None if principal.all_stores else list(principal.stores)


def _stores(principal: Principal, stores: list[str] | None) -> list[str]:
    """The subscription's stores: those named, each in the caller's scope; else the scope."""
    if stores is None:
        return list(principal.stores)
    problems = check_scope(stores)
    if problems:
        errors = [{"field": "stores", "message": problem} for problem in problems]
        raise ApiError(422, "validation_failed", "; ".join(problems), errors=errors)
    outside = [
        s
        for s in stores
        if not principal.in_scope(s) or (s == ALL_STORES and not principal.all_stores)
    ]
    if outside:
        raise ApiError(403, "forbidden", f"The stores {outside} lie outside your scope.")
    return stores


def _types(types: list[str] | None) -> list[str] | None:
    if types is None:
        return None
    unknown = [t for t in types if not TYPE.match(t) or t not in KNOWN_TYPES]
    if unknown or len(set(types)) != len(types):
        errors = [{"field": "types", "message": f"unknown event type {t!r}"} for t in unknown]
        detail = f"Unknown or repeated types: {unknown or 'a type listed twice'}."
        raise ApiError(422, "validation_failed", detail, errors=errors or None)
    return sorted(types)


async def check_target(state: State, url: str) -> None:
    """422 unless `url` is a http(s) URL whose host resolves only to allowed addresses."""
    allowed = targets.networks(state.resources.settings.webhook_allowed_networks)
    try:
        await asyncio.to_thread(targets.pin, targets.parse(url), allowed)
    except targets.TargetRefused as refused:
        errors = [{"field": "url", "message": refused.detail}]
        raise ApiError(422, refused.code, refused.detail, errors=errors) from None


async def _visible(state: State, principal: Principal, webhook_id: uuid.UUID) -> Webhook:
    async with state.resources.primary.connection() as conn:
        row = await subscriptions.find(conn, str(webhook_id), _scope(principal))
    if row is None:
        raise ApiError(404, "webhook_not_found", f"No webhook {webhook_id} in your scope.")
    return _view(row)


class WebhookController(Controller):
    """`/v1/webhooks`: admins and managers, each seeing the webhooks of their stores."""

    path = "/v1/webhooks"
    tags = ("webhooks",)

    @post(
        "/",
        summary="Subscribe a URL",
        **protect(RouteClass.MANAGER_COMMAND, responses={422: PROBLEM}),
    )
    async def create_webhook(
        self, request: ApiRequest, state: State, data: JSONBody[NewWebhook]
    ) -> CreatedWebhook:
        """201 with the signing secret (shown only here); deliveries start with the next
        event. 422 `invalid_webhook_url`, `unsafe_webhook_target`, `unresolvable_webhook_target`."""
        stores, types = _stores(request.user, data.stores), _types(data.types)
        await check_target(state, data.url)
        async with state.resources.replica.connection() as replica:
            after = await webhook_source.last_seq(replica)
        new = subscriptions.NewSubscription(
            str(uuid.uuid4()),
            data.url,
            stores,
            types,
            data.description,
            signing.new_secret(),
            request.user.id,
            after,
        )
        async with state.resources.primary.connection() as conn:
            await subscriptions.create(conn, new)
            row = await subscriptions.find(conn, new.id, None)
        assert row is not None
        return CreatedWebhook(**msgspec.structs.asdict(_view(row)), secret=new.secret)

    @get("/", summary="List webhooks", **protect(RouteClass.MANAGER_COMMAND, store="store"))
    async def list_webhooks(
        self,
        request: ApiRequest,
        state: State,
        cursor: uuid.UUID | None = None,
        limit: Limit = 100,
        store: StoreFilter = None,
    ) -> Page[Webhook]:
        """The webhooks whose stores all lie in the caller's scope, by id; no secrets.
        `store` keeps those that deliver that store's events (its own or every store's)."""
        after = str(cursor) if cursor else None
        stores = [part for part in store.split(",") if part] if store else None
        async with state.resources.primary.connection() as conn:
            rows = await subscriptions.listed(conn, _scope(request.user), stores, after, limit + 1)
        items = [_view(row) for row in rows[:limit]]
        return Page(items, items[-1].id if len(rows) > limit else None)

    @delete(
        "/{webhook_id:uuid}",
        summary="Delete a webhook",
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def delete_webhook(
        self, request: ApiRequest, state: State, webhook_id: uuid.UUID
    ) -> None:
        """204; nothing more is sent. 404 `webhook_not_found`."""
        await _visible(state, request.user, webhook_id)
        async with state.resources.primary.connection() as conn:
            await subscriptions.delete(conn, str(webhook_id))

    @post(
        "/{webhook_id:uuid}/rotate-secret",
        summary="Rotate the signing secret",
        status_code=200,
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def rotate_secret(
        self, request: ApiRequest, state: State, webhook_id: uuid.UUID
    ) -> RotatedSecret:
        """200 with the new secret; for 24 hours each message carries both signatures."""
        await _visible(state, request.user, webhook_id)
        secret = signing.new_secret()
        async with state.resources.primary.connection() as conn:
            await subscriptions.rotate(conn, str(webhook_id), secret)
        return RotatedSecret(secret)

    @post(
        "/{webhook_id:uuid}/test",
        summary="Send a test delivery",
        status_code=202,
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def send_test(
        self, request: ApiRequest, state: State, webhook_id: uuid.UUID
    ) -> Response[None]:
        """202; a `webhook.test` message goes out beside the stream (see its log)."""
        await _visible(state, request.user, webhook_id)
        async with state.resources.primary.connection() as conn:
            body = messages.test_body(str(webhook_id))
            await subscriptions.queue_test(conn, str(webhook_id), f"msg_{uuid.uuid4().hex}", body)
        wake([str(webhook_id)])
        return Response(None, status_code=202)

    @get(
        "/{webhook_id:uuid}/deliveries",
        summary="The delivery log",
        **protect(RouteClass.MANAGER_COMMAND, responses={404: PROBLEM}),
    )
    async def list_deliveries(
        self,
        request: ApiRequest,
        state: State,
        webhook_id: uuid.UUID,
        cursor: Annotated[int | None, Parameter(ge=1)] = None,
        limit: Limit = 100,
    ) -> Page[DeliveryView]:
        """Messages newest first: attempts, status, last status code, next attempt."""
        await _visible(state, request.user, webhook_id)
        async with state.resources.primary.connection() as conn:
            rows = await subscriptions.deliveries(conn, str(webhook_id), cursor, limit + 1)
        items = [
            DeliveryView(
                webhook_id=r.webhook_id,
                seq=r.seq,
                type=r.type,
                attempts=r.attempts,
                status=r.status,
                last_status_code=r.last_status_code,
                next_attempt_at=r.next_attempt_at,
            )
            for r in rows[:limit]
        ]
        return Page(items, str(rows[limit - 1].id) if len(rows) > limit else None)
