"""The security middleware: who is calling (into `request.user`), and are they within budget.

Authorization is not decided here: each route's guard (security/policy.py) does that.
Health and metrics are exempt, so probes are never refused.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from inventory.api.errors import send_problem
from inventory.security.context import Security
from inventory.security.errors import SecurityError

EXEMPT_PREFIXES = ("/health", "/metrics")


def _security(scope: Scope) -> Security:
    security: Security = scope["litestar_app"].state.security
    return security


def client_ip_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client IP the middleware settled on, for a request or a WebSocket."""
    ip: str = connection.scope.get("state", {}).get("client_ip", "unknown")
    return ip


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
            principal, decision = await security.identify(scope["headers"], ip)
        except SecurityError as error:
            await send_problem(scope, receive, send, error)
            return
        scope["user"] = principal
        limit_headers = decision.headers()

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in limit_headers.items():
                    if name not in headers:  # a stricter budget (login) already spoke
                        headers[name] = value
            await send(message)

        await app(scope, receive, send_with_limits)

    return middleware
