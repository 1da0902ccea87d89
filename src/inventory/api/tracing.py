"""The API's server spans (Litestar's OpenTelemetry middleware), built only when
runtime/telemetry.py turned tracing on: named by route template, never by the raw path,
and without query strings (the feed's `?token=` must not leave the process)."""

from __future__ import annotations

from typing import Any

from litestar.types import Middleware, Scope

# Attributes the ASGI instrumentation fills from the raw URL, old and stable names.
URL_ATTRIBUTES = ("http.url", "url.full", "http.target")
QUERY_ATTRIBUTES = ("url.query",)


def route_of(scope: Scope) -> tuple[str, dict[str, str]]:
    """`GET /v1/stores/{store}/stock`: the span's name and route, from the template."""
    template = str(scope.get("path_template") or "unrouted")
    method = str(scope.get("method", "")).strip()
    name = f"{method} {template}" if method else template
    return name, {"http.route": template}


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


def tracing_middleware() -> Middleware:
    """One span per request or WebSocket (not per message sent or received on a feed);
    /metrics and /health go untraced."""
    from litestar.plugins.opentelemetry import OpenTelemetryConfig  # noqa: PLC0415

    config = OpenTelemetryConfig(
        exclude=["/metrics", "/health"],
        exclude_spans=["receive", "send"],
        scope_span_details_extractor=route_of,
        server_request_hook_handler=without_query,
    )
    return config.middleware
