"""`inventory migrate`: both schemas up to date, and the replica's subscription."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import add_command
from inventory.runtime.settings import MigrationSettings

# Only the databases: migrate never touches Redis, so it runs before Redis is up.
MIGRATE_ENV = """\
environment:
  INVENTORY_PRIMARY_ADMIN_URL      the primary as the owner of its schema (a superuser)
  INVENTORY_REPLICA_ADMIN_URL      the replica as a role that may create the subscription
  INVENTORY_PRIMARY_URL            used when INVENTORY_PRIMARY_ADMIN_URL is not set
  INVENTORY_REPLICA_URL            used when INVENTORY_REPLICA_ADMIN_URL is not set
  INVENTORY_SUBSCRIPTION_CONNINFO  the primary as the replica's server reaches it, as a role
                                   with REPLICATION (default: the primary's admin URL)
  INVENTORY_LOG_LEVEL              DEBUG, INFO (default), WARNING or ERROR
  INVENTORY_LOG_JSON               1 for JSON lines, 0 for readable ones
"""


def _run(args: argparse.Namespace) -> int:
    from inventory.runtime.migrations import migrate_all  # noqa: PLC0415

    settings = MigrationSettings.from_env()
    applied = migrate_all(
        settings.primary_admin_url, settings.replica_admin_url, settings.subscription_conninfo
    )
    for side, names in applied.items():
        for name in names:
            print(f"applied {side} {name}")  # noqa: T201 - command output
    if not any(applied.values()):
        print("nothing to apply: both schemas are up to date")  # noqa: T201
    return 0


def add(commands: Any) -> None:
    """Add `inventory migrate` to the parser."""
    add_command(
        commands,
        "migrate",
        "Apply pending schema migrations to the primary and the replica and create the "
        "replica's subscription. Safe to run from several processes at once.",
        MIGRATE_ENV,
        _run,
    )
