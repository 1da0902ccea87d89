"""`inventory serve`: the HTTP and WebSocket API under uvicorn, over wiring.build."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import SERVER_ENV, add_command
from inventory.runtime.processes import RuntimeFailure, port_is_free
from inventory.runtime.settings import Settings


def _run(args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415 - only the API process needs it

    from inventory import wiring  # noqa: PLC0415
    from inventory.feed.uvicorn_protocol import FeedWebSocketProtocol  # noqa: PLC0415

    settings = Settings.from_env()
    if not port_is_free(args.port, args.host):
        raise RuntimeFailure(f"port {args.port} on {args.host} is in use; pass --port")
    uvicorn.run(
        wiring.app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the client IP comes from trusted proxies only (security)
        timeout_graceful_shutdown=10,
        # The feed writes each live message's frame, built once, to every connection
        # (feed/frames.py): frames are identical only without per-connection compression.
        ws=FeedWebSocketProtocol,
        ws_per_message_deflate=False,
    )
    return 0


def add(commands: Any) -> None:
    """Add `inventory serve` to the parser."""
    serve = add_command(commands, "serve", "Run the HTTP and WebSocket API.", SERVER_ENV, _run)
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
