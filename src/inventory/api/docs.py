"""The API reference at `/docs`, with Swagger UI served from our own process (no CDN)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import MediaType, Response, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from inventory import __version__
from inventory.api.reference import ReferencePlugin


def _swagger_assets() -> Path:
    # Located without importing: the package's __init__ pulls in web-framework adapters.
    spec = importlib.util.find_spec("swagger_ui")
    assert spec is not None and spec.submodule_search_locations, "swagger-ui-py is missing"
    return Path(next(iter(spec.submodule_search_locations))) / "static"


PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>inventory API reference</title>
  <link rel="icon" href="/favicon.ico">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="reference"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/schema/openapi.json",
      dom_id: "#reference",
      deepLinking: true,
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


STATIC = Path(__file__).resolve().parent / "static"
# Browsers ask for both at the site's root; served from the package, never a CDN.
FAVICON = (STATIC / "favicon.ico").read_bytes()
MANIFEST = (STATIC / "manifest.webmanifest").read_bytes()
CACHED = {"Cache-Control": "public, max-age=86400"}


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False)
def favicon() -> Response[bytes]:
    """The site icon."""
    return Response(FAVICON, media_type="image/x-icon", headers=CACHED)


@get("/manifest.webmanifest", include_in_schema=False, sync_to_thread=False)
def manifest() -> Response[bytes]:
    """The web app manifest: name, colours and icons for installing the dashboard."""
    return Response(MANIFEST, media_type="application/manifest+json", headers=CACHED)


@get("/docs", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def reference() -> str:
    """The Swagger UI page for `/schema/openapi.json`."""
    return PAGE


docs_router = Router(
    path="/",
    route_handlers=[
        reference,
        favicon,
        manifest,
        create_static_files_router(
            path="/docs/assets", directories=[_swagger_assets()], include_in_schema=False
        ),
    ],
)


def openapi_config() -> OpenAPIConfig:
    """The OpenAPI document at `/schema` (rendered by api/contract.py), bearer auth."""
    return OpenAPIConfig(
        title="inventory",
        version=__version__,
        description=(
            "Event-sourced inventory for retailers with many stores. The live feed is"
            " the WebSocket `GET /v1/feed`: authenticate it with `Authorization: Bearer`,"
            " or from a browser with the subprotocols `inventory.v1` and"
            " `bearer.<token>` (answered with `inventory.v1`); `?token=` still works."
            "\n\n**Reading your own writes.** Writes go to the primary, reads to read models"
            " on a replica a few milliseconds behind: a read sent right after a write may"
            " answer the state before it, by design. Every write answers a `position`"
            " (catalog and store writes also a `Location`); pass it to the next read as"
            " `?min_position=<position>` and the read waits (up to 5 s, else 503"
            " `read_model_lagging`) until it shows the write. Every read answers"
            " `X-Read-Position`.\n\n**Retries.** Send an `Idempotency-Key` and keep it"
            " across retries: a retry answers the first response (`Idempotent-Replayed:"
            " true`) and costs no rate budget."
        ),
        path="/schema",
        render_plugins=[ReferencePlugin()],
        use_handler_docstrings=True,
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A JWT from /v1/auth/token, or an API key.",
                )
            }
        ),
    )
