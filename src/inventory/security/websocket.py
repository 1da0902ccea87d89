"""WebSocket admission for the live feed: authenticate, authorize, rate-limit, or close.

Browsers cannot set headers on a WebSocket, so the token may come as a subprotocol:
`Sec-WebSocket-Protocol: inventory.v1, bearer.<token>` (answered with `inventory.v1`),
which keeps it out of URLs and logs; `?token=` still works for older clients. A refused
handshake is accepted and then closed with a code the browser can read: 4401 (no or bad
credentials), 4403 (role or store scope), 4429 (rate limit). A handshake without valid
credentials spends the client IP's anonymous budget, like any call with bad credentials
(failed logins included): once it is spent, such handshakes close with 4429.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from litestar import WebSocket

from inventory.security.authentication import bearer_token, query_token
from inventory.security.context import Security
from inventory.security.errors import Forbidden, Unauthorized
from inventory.security.policy import RouteClass, authorize
from inventory.security.principal import Principal
from inventory.security.socket_watch import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED

CLOSE_RATE_LIMITED = 4429
SUBPROTOCOL = "inventory.v1"
BEARER_PROTOCOL = "bearer."


def _security(socket: WebSocket[Any, Any, Any]) -> Security:
    security: Security = socket.app.state.security
    return security


def protocol_token(protocols: Iterable[str]) -> str | None:
    """The token of a `bearer.<token>` subprotocol, or None."""
    for protocol in protocols:
        if protocol.startswith(BEARER_PROTOCOL) and len(protocol) > len(BEARER_PROTOCOL):
            return protocol[len(BEARER_PROTOCOL) :]
    return None


def _answer(socket: WebSocket[Any, Any, Any]) -> str | None:
    """The subprotocol to answer: `inventory.v1` when offered (a browser that offered
    subprotocols fails a handshake answered with none)."""
    return SUBPROTOCOL if SUBPROTOCOL in socket.scope.get("subprotocols", ()) else None


def _ip(socket: WebSocket[Any, Any, Any]) -> str:
    ip: str = socket.scope.get("state", {}).get("client_ip", "unknown")
    return ip


async def authenticate_websocket(
    socket: WebSocket[Any, Any, Any],
) -> tuple[Principal, float | None]:
    """The principal of a handshake (Authorization header, else a `bearer.` subprotocol,
    else `?token=`) and its token's expiry; Unauthorized."""
    security = _security(socket)
    token = (
        bearer_token(socket.scope["headers"])
        or protocol_token(socket.scope.get("subprotocols", ()))
        or query_token(socket.scope["query_string"])
    )
    if not token:
        raise Unauthorized(
            "A WebSocket needs `Authorization: Bearer`, a `bearer.<token>` subprotocol"
            " or `?token=`.",
            invalid=False,
        )
    principal, expires_at = await security.authenticator.authenticate_until(token, _ip(socket))
    socket.scope["user"] = principal
    return principal, expires_at


async def admit_websocket(
    socket: WebSocket[Any, Any, Any],
    route_class: RouteClass = RouteClass.FEED,
    stores: Iterable[str] = (),
) -> tuple[Principal, float | None] | None:
    """Accept the socket and return its principal and token expiry, or close it with
    4401/4403/4429 and return None. A handshake without valid credentials spends the IP's
    anonymous budget; a valid one the principal's `ws_handshake` budget."""
    limiter = _security(socket).limiter
    try:
        principal, expires_at = await authenticate_websocket(socket)
    except Unauthorized:
        refused = await limiter.check_request(None, _ip(socket))
        if not refused.allowed:
            await _refuse(socket, CLOSE_RATE_LIMITED, "rate_limited")
        else:
            await _refuse(socket, CLOSE_UNAUTHORIZED, "unauthorized")
        return None
    try:
        authorize(principal, route_class, stores)
    except Forbidden:
        await _refuse(socket, CLOSE_FORBIDDEN, "forbidden")
        return None
    decision = await limiter.check_ws_handshake(principal)
    if not decision.allowed:
        await _refuse(socket, CLOSE_RATE_LIMITED, "rate_limited")
        return None
    await socket.accept(subprotocols=_answer(socket))
    return principal, expires_at


async def _refuse(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    await socket.accept(subprotocols=_answer(socket))
    await socket.close(code=code, reason=reason)


def connection_id() -> str:
    """A fresh id for one connection's inbound-message budget."""
    return uuid.uuid4().hex


async def allow_message(socket: WebSocket[Any, Any, Any], connection: str) -> bool:
    """Count one inbound message of `connection`; when over budget close with 4429 and
    return False (the caller stops reading)."""
    decision = await _security(socket).limiter.check_ws_message(connection)
    if decision.allowed:
        return True
    await socket.close(code=CLOSE_RATE_LIMITED, reason="rate_limited")
    return False
