"""Request ids and access logs: every log line of a request carries its id."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("inventory.api.access")
access = logging.getLogger("inventory.api.access")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The client's last `X-Request-ID` when well-formed, else a new one."""
    offered = ""
    for name, value in headers:
        if name == b"x-request-id":
            offered = value.decode("latin-1")
    return offered if REQUEST_ID.match(offered) else uuid.uuid4().hex


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Bind a request id (the client's `X-Request-ID` when well-formed) and log the outcome."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        request_id = _request_id(scope["headers"])
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            if access.isEnabledFor(logging.INFO):  # else structlog would still render it
                log.info(
                    "request",
                    method=scope.get("method", "WS"),
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.clear_contextvars()

    return middleware
