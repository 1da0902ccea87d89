"""The dashboard at `GET /`: one HTML page and its script and style, served by the app
itself (no CDN, no build step). It talks to the public API and `/v1/feed` like any client."""

from __future__ import annotations

from pathlib import Path

from litestar import MediaType, Response, Router, get
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).resolve().parent / "static"


@get("/", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def dashboard() -> Response[bytes]:
    """The dashboard page (sign-in, store picker, live stock, alerts, ticker, chart)."""
    return Response(
        (STATIC / "index.html").read_bytes(),
        media_type=MediaType.HTML,
        headers={"Cache-Control": "no-cache"},
    )


dashboard_router = Router(
    path="/",
    route_handlers=[
        dashboard,
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
    ],
)
