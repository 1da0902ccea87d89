"""WebSocket admission for the live feed: authenticate, authorize, rate-limit, or close.

Browsers cannot set headers on a WebSocket, so the token may come as `?token=`. A refused
handshake is accepted and then closed with a code the browser can read: 4401 (no or bad
credentials), 4403 (role or store scope), 4429 (rate limit).
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

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_RATE_LIMITED = 4429


def _security(socket: WebSocket[Any, Any, Any]) -> Security:
    security: Security = socket.app.state.security
    return security


async def authenticate_websocket(socket: WebSocket[Any, Any, Any]) -> Principal:
    """The principal of a handshake (Authorization header, else `?token=`); Unauthorized."""
    security = _security(socket)
    token = bearer_token(socket.scope["headers"]) or query_token(socket.scope["query_string"])
    if not token:
        raise Unauthorized("A WebSocket needs `Authorization: Bearer` or `?token=`.", invalid=False)
    ip = socket.scope.get("state", {}).get("client_ip", "unknown")
    principal = await security.authenticator.authenticate(token, ip)
    socket.scope["user"] = principal
    return principal


async def admit_websocket(
    socket: WebSocket[Any, Any, Any],
    route_class: RouteClass = RouteClass.FEED,
    stores: Iterable[str] = (),
) -> Principal | None:
    """Accept the socket and return its principal, or close it with 4401/4403/4429 and
    return None. Counts one handshake against the principal's `ws_handshake` budget."""
    try:
        principal = authorize(await authenticate_websocket(socket), route_class, stores)
    except Unauthorized:
        await _refuse(socket, CLOSE_UNAUTHORIZED, "unauthorized")
        return None
    except Forbidden:
        await _refuse(socket, CLOSE_FORBIDDEN, "forbidden")
        return None
    decision = await _security(socket).limiter.check_ws_handshake(principal)
    if not decision.allowed:
        await _refuse(socket, CLOSE_RATE_LIMITED, "rate_limited")
        return None
    await socket.accept()
    return principal


async def _refuse(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    await socket.accept()
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
