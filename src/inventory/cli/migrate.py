"""`inventory migrate`: both schemas up to date, and the replica's subscription."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import SERVER_ENV, add_command
from inventory.runtime.settings import Settings

MIGRATE_ENV = (
    SERVER_ENV
    + """\
  INVENTORY_PRIMARY_ADMIN_URL      owner role for the primary's schema (default: PRIMARY_URL)
  INVENTORY_REPLICA_ADMIN_URL      role that may create the subscription (default: REPLICA_URL)
  INVENTORY_SUBSCRIPTION_CONNINFO  the primary as the replica reaches it, as a role with
                                   REPLICATION (default: PRIMARY_ADMIN_URL)
"""
)


def _run(args: argparse.Namespace) -> int:
    from inventory.runtime.migrations import migrate_all  # noqa: PLC0415

    settings = Settings.from_env()
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
