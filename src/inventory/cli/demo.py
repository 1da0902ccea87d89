"""`inventory demo`: sample stores and products, then a simulated stream of POS traffic.

It is a client of the public API, like a POS terminal or a back office: every request
carries the token in `INVENTORY_DEMO_TOKEN` and, for stock commands, an
`Idempotency-Key`. A request that fails on the network is sent again with the same key,
so an API restart in the middle changes nothing; a 429 waits for its `Retry-After`.

The loader is idempotent: stores and products that exist are left as they are, and the
opening deliveries and reorder points use fixed keys, so a second start replays them.
The simulation then runs until interrupted: sales of one to three lines (now and then an
offline sale recorded minutes late), returns, damage and counts, and a delivery when an
item falls under its reorder point or a sale finds it short.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

import structlog

from inventory.cli.common import add_command
from inventory.cli.demo_client import PRODUCTS, STORES, Api, DemoError, load
from inventory.cli.demo_traffic import Simulation
from inventory.runtime.settings import ConfigurationError

log = structlog.get_logger(__name__)

DEMO_ENV = """\
environment:
  INVENTORY_DEMO_TOKEN  an API key or access token with the admin role (never argv)
"""


class Stop(BaseException):
    """SIGINT or SIGTERM: end the simulation after the command in flight."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stop


def run(base: str, token: str, *, rate: float, load_only: bool = False) -> int:
    """Load the sample data, then simulate `rate` commands per second until stopped."""
    api = Api(base.rstrip("/"), token)
    try:
        load(api)
    except DemoError as error:
        print(f"inventory demo: error: {error}", file=sys.stderr)  # noqa: T201
        return 1
    log.info("demo data loaded", stores=len(STORES), products=len(PRODUCTS))
    if load_only:
        return 0
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    simulation = Simulation(api)
    reported = time.monotonic()
    try:
        while True:
            started = time.monotonic()
            simulation.step()
            if started - reported >= 60:
                log.info("demo traffic", **simulation.counts)
                reported = started
            time.sleep(max(1 / rate - (time.monotonic() - started), 0))
    except Stop:
        log.info("demo stopped", **simulation.counts)
        return 0
    except DemoError as error:
        print(f"inventory demo: error: {error}", file=sys.stderr)  # noqa: T201
        return 1


def _run(args: argparse.Namespace) -> int:
    token = os.environ.get("INVENTORY_DEMO_TOKEN", "")
    if not token:
        raise ConfigurationError("INVENTORY_DEMO_TOKEN is not set (an admin API key or token)")
    if not args.rate > 0:
        raise ConfigurationError("--rate must be a number of commands per second above 0")
    if not args.url.startswith(("http://", "https://")):
        raise ConfigurationError(f"--url must be an http:// or https:// URL, not {args.url!r}")
    return run(args.url, token, rate=args.rate, load_only=args.load_only)


def add(commands: Any) -> None:
    """Add `inventory demo` to the parser."""
    demo = add_command(
        commands,
        "demo",
        "Load sample stores, products, opening stock and reorder points through the API, "
        "then simulate POS traffic (sales, late offline sales, returns, damage, counts, "
        "deliveries) until interrupted. Idempotent: a second run keeps what exists.",
        DEMO_ENV,
        _run,
    )
    demo.add_argument("--url", default="http://127.0.0.1:8000", help="the API's base URL")
    demo.add_argument("--rate", type=float, default=2.0, help="commands per second (default 2)")
    demo.add_argument("--load-only", action="store_true", help="load the sample data and stop")
