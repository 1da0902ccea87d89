"""The API's server spans (Litestar's OpenTelemetry middleware), built only when
runtime/telemetry.py turned tracing on: named by route template, never by the raw path,
and without query strings (the feed's `?token=` must not leave the process)."""

from __future__ import annotations

from typing import Any

from litestar.types import ASGIApp, Middleware, Receive, Scope, Send

# Attributes the ASGI instrumentation fills from the raw URL, old and stable names.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
QUERY_ATTRIBUTES = ("url.query",)


def first_name(scope: Scope) -> tuple[str, dict[str, str]]:
    """The span's name before routing: the method alone, never the raw path (it holds
    ids); `name_by_route` renames it once the route is known."""
    method = str(scope.get("method", "")).strip()
    return method or str(scope.get("type", "websocket")), {}


def name_by_route(app: ASGIApp) -> ASGIApp:
    """Middleware run after routing: names the request's span after its route template
    (`GET /v1/stores/{store}/stock`)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        template = scope.get("path_template")
        if template:
            from opentelemetry import trace  # noqa: PLC0415  # type: ignore[import-not-found,unused-ignore]

            method = str(scope.get("method", "")).strip()
            span = trace.get_current_span()
            span.update_name(f"{method} {template}" if method else str(template))
            span.set_attribute("http.route", str(template))
        await app(scope, receive, send)

    return middleware


def without_query(span: Any, scope: dict[str, Any]) -> None:
    """Replace what the instrumentation recorded of the URL by the path alone."""
    if not span.is_recording():
        return
    recorded = getattr(span, "attributes", None) or {}
    path = str(scope.get("path", ""))
    for key in URL_ATTRIBUTES:
        if key in recorded:
            value = str(recorded[key])
            span.set_attribute(key, value.split("?", 1)[0] if "://" in value else path)
    for key in QUERY_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, "")


def tracing_middleware() -> list[Middleware]:
    """One span per request or WebSocket (not per message sent or received on a feed);
    /metrics and /health go untraced."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig  # noqa: PLC0415

    config = OpenTelemetryConfig(
        exclude=["/metrics", "/health"],
        exclude_spans=["receive", "send"],
        scope_span_details_extractor=first_name,
        server_request_hook_handler=without_query,
    )
    return [config.middleware, name_by_route]
