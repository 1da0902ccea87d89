"""Request ids and access logs (every log line of a request carries its id), and the
request metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("inventory.api.access")
access = logging.getLogger("inventory.api.access")

Labels = dict[str, str | int | float]

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


class RequestMetrics(PrometheusMiddleware):
    """Litestar's request metrics (same names, labels and values, docs/observability.md)
    without a `Request` per call and with each label set's children resolved once."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Callable[[Labels], Any], labels: Labels) -> Any:
        key = (metric.__name__, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric(labels).labels(*labels.values())
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the call in progress, then its status and the time to its first body."""
        http = scope["type"] == ScopeType.HTTP
        labels: Labels = {
            "method": scope["method"] if http else scope["type"],  # type: ignore[typeddict-item]
            "path": scope["path_template"],
            "status_code": 200,
            "app_name": self._config.app_name,
        }
        started = time.perf_counter()
        span = {"status": 200, "duration": 0.0}

        async def measured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                span["status"] = message["status"]
            elif message["type"] == "http.response.body":
                span["duration"] = time.perf_counter() - started
            await send(message)

        self._child(self.requests_in_progress, labels).inc()
        try:
            await self.app(scope, receive, measured_send)
        finally:
            self._child(self.requests_in_progress, labels).dec()
            labels["status_code"] = span["status"]
            if span["status"] >= HTTP_500_INTERNAL_SERVER_ERROR:
                self._child(self.requests_error_count, labels).inc()
            self._child(self.request_count, labels).inc()
            self._child(self.request_time, labels).observe(span["duration"])
