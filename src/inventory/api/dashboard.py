"""The dashboard at `GET /`: one HTML page, its ES modules and style, served by the app
itself (no CDN, no build step). It talks to the public API and `/v1/feed` like any client."""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).resolve().parent / "static"

# No inline script or style, nothing from another origin: a product name that smuggles
# markup past the page's escaping still cannot run or load anything.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@get("/", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def dashboard() -> Response[bytes]:
    """The dashboard page: sign-in, the work forms and views a role may use, admin pages."""
    return Response(
        (STATIC / "index.html").read_bytes(), media_type=MediaType.HTML, headers=PAGE_HEADERS
    )


dashboard_router = Router(
    path="/",
    route_handlers=[
        dashboard,
        create_static_files_router(
            path="/static",
            directories=[STATIC],
            include_in_schema=False,
            cache_control=CacheControlHeader(no_cache=True),
        ),
    ],
)
