"""The security middleware: who is calling (into `request.user`), and are they within budget.

Authorization is decided after the door's checks, by `policy_middleware` (the route's
class and store scope, security/policy.py).
Health and metrics are exempt, so probes are never refused. A call answered from the
idempotency record (a replay) spends no budget: its count is given back, and once over
budget a keyed write whose response is stored is let through to be replayed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from inventory.api.errors import send_problem
from inventory.security.context import Security
from inventory.security.errors import RateLimited, SecurityError
from inventory.security.policy import authorize_route
from inventory.security.principal import Principal
from inventory.security.ratelimit import Decision

EXEMPT_PREFIXES = ("/health", "/metrics")
WRITES = frozenset({"POST", "PUT", "PATCH"})
REPLAYED = b"idempotent-replayed"
LIMIT_HEADERS = frozenset({b"ratelimit-policy", b"ratelimit", b"retry-after"})
MAX_KEY_LENGTH = 255


def _security(scope: Scope) -> Security:
    security: Security = scope["litestar_app"].state.security
    return security


def client_ip_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client IP the middleware settled on, for a request or a WebSocket."""
    ip: str = connection.scope.get("state", {}).get("client_ip", "unknown")
    return ip


async def _replay_waits(security: Security, scope: Scope, refused: RateLimited) -> bool:
    """Over budget, a keyed write whose response is stored still passes: the idempotency
    record answers it, and a replay spends no budget."""
    if refused.principal is None or scope.get("method") not in WRITES:
        return False
    keys = [value for name, value in scope["headers"] if name == b"idempotency-key"]
    if len(keys) != 1 or not 0 < len(keys[0]) <= MAX_KEY_LENGTH:
        return False
    return await security.replay_waits(refused.principal, keys[0].decode("latin-1"))


async def _identify(security: Security, scope: Scope, ip: str) -> tuple[Principal | None, Decision]:
    """The caller and its budget's decision; RateLimited unless a replay waits for it."""
    try:
        return await security.identify(scope["headers"], ip)
    except RateLimited as refused:
        if not await _replay_waits(security, scope, refused):
            raise
        # Admitted after all: no Retry-After on an answer that is not a refusal.
        return refused.principal, dataclasses.replace(refused.decision, allowed=True)


def _with_limits(
    send: Send, security: Security, principal: Principal | None, decision: Decision
) -> Send:
    """`send` adding the budget's RateLimit headers, and refunding a replayed call."""
    limits = decision.raw_headers()

    async def send_with_limits(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present, replayed = _present(headers)
            # A stricter budget (login) may already have spoken: its headers stay.
            headers += [header for header in limits if header[0] not in present]
            message["headers"] = headers
            if principal is not None and replayed:
                await security.replayed(principal)
        await send(message)

    return send_with_limits


def _present(headers: list[tuple[bytes, bytes]]) -> tuple[set[bytes], bool]:
    """The RateLimit headers already set, and whether the response is the idempotency
    record's (its first `Idempotent-Replayed` reads `true`), in one pass."""
    present: set[bytes] = set()
    replayed: bool | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered in LIMIT_HEADERS:
            present.add(lowered)
        elif lowered == REPLAYED and replayed is None:
            replayed = value == b"true"
    return present, bool(replayed)


def security_middleware(app: ASGIApp) -> ASGIApp:
    """Authenticate and rate-limit every HTTP call; WebSockets authenticate in their handler."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope["user"] = None
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        security = _security(scope)
        client = scope.get("client")
        ip = security.authenticator.client_ip(client[0] if client else None, scope["headers"])
        scope.setdefault("state", {})["client_ip"] = ip
        if scope["type"] == ScopeType.WEBSOCKET or scope["path"].startswith(EXEMPT_PREFIXES):
            await app(scope, receive, send)
            return
        try:
            principal, decision = await _identify(security, scope, ip)
        except SecurityError as error:
            await send_problem(scope, receive, send, error)
            return
        scope["user"] = principal
        await app(scope, receive, _with_limits(send, security, principal, decision))

    return middleware


def policy_middleware(app: ASGIApp) -> ASGIApp:
    """401 or 403 for an HTTP call its route's policy refuses (security/policy.py)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            try:
                authorize_route(ASGIConnection(scope, receive, send))
            except SecurityError as error:
                await send_problem(scope, receive, send, error)
                return
        await app(scope, receive, send)

    return middleware
