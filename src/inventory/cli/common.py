"""What every command group shares: the environment help texts and the way a group adds
its subcommand to the `inventory` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from inventory.runtime.settings import ConfigurationError
from inventory.security.principal import Role, check_scope

SERVER_ENV = """\
environment:
  INVENTORY_PRIMARY_URL   postgresql:// URL of the primary (event store), as the app role
  INVENTORY_REPLICA_URL   postgresql:// URL of the replica (read models), as the app role
  INVENTORY_REDIS_URL     redis:// URL (rate limits, broker, live feed)
  INVENTORY_JWT_SECRET    key that signs access tokens (serve)
  INVENTORY_REDIS_NAMESPACE  prefix of Redis keys; the same as the API's (keys revoke)
  INVENTORY_LOG_LEVEL     DEBUG, INFO (default), WARNING or ERROR
  INVENTORY_LOG_JSON      1 for JSON lines, 0 for readable ones (default: JSON off a terminal)
"""


def add_command(
    commands: Any, name: str, summary: str, epilog: str, run: Callable[..., int]
) -> argparse.ArgumentParser:
    """Add the group `name` to the `inventory` parser; `run(args)` runs it."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(run=run)
    return sub


def actions(parser: argparse.ArgumentParser) -> Any:
    """The group's ACTION subcommands (`inventory audit verify`, `keys create`...)."""
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION")


def stores_of(raw: str, role: Role) -> list[str]:
    """The `--stores` list, checked against what `role` may be scoped to."""
    stores = [part.strip() for part in raw.split(",") if part.strip()]
    problems = check_scope(stores, role)
    if problems:
        raise ConfigurationError(f"--stores: {'; '.join(problems)}")
    return stores
