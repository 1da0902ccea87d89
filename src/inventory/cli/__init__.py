"""The `inventory` command: run the service, its pieces, and its maintenance tasks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import psycopg
import redis

from inventory.cli import (
    audit,
    demo,
    dev,
    events,
    failover,
    imports,
    keys,
    migrate,
    projections,
    serve,
    users,
    worker,
)
from inventory.runtime.logging import configure_logging
from inventory.runtime.migrations import MigrationError
from inventory.runtime.processes import RuntimeFailure
from inventory.runtime.settings import ConfigurationError
from inventory.security.errors import SecurityError

FAILURES = (
    ConfigurationError,
    RuntimeFailure,
    MigrationError,
    psycopg.OperationalError,
    redis.ConnectionError,
    SecurityError,
)

# In the order `inventory --help` lists them; each module adds its own subcommand.
GROUPS = (
    dev,
    migrate,
    serve,
    worker,
    projections,
    events,
    imports,
    demo,
    audit,
    users,
    keys,
    failover,
)


def parser() -> argparse.ArgumentParser:
    """The `inventory` parser, one subcommand per command group."""
    built = argparse.ArgumentParser(
        prog="inventory",
        description="Event-sourced inventory for retailers with many stores.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = built.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add(commands)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `inventory` console script."""
    args = parser().parse_args(argv)
    json_env = os.environ.get("INVENTORY_LOG_JSON")
    configure_logging(
        os.environ.get("INVENTORY_LOG_LEVEL", "INFO"),
        json=None if json_env is None else json_env == "1",
    )
    try:
        result: int = args.run(args)
    except FAILURES as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        print(f"inventory {args.command}: error: {message}", file=sys.stderr)  # noqa: T201
        return 2
    except KeyboardInterrupt:
        return 130
    return result
