"""`inventory failover`: the primary is lost and no Patroni decides; promote its standby."""

from __future__ import annotations

import argparse
from typing import Any

from inventory.cli.common import add_command
from inventory.runtime.settings import MigrationSettings

FAILOVER_ENV = """\
what it does, in order (nothing changes until every check passed):
  1. checks that --standby is a standby holding a synced, failover-ready copy of the
     replica's subscription slot, and that no server in INVENTORY_PRIMARY_ADMIN_URL
     still accepts writes (stop the old primary first: it must never come back as one)
  2. promotes the standby (pg_promote) and clears synchronized_standby_slots and
     synchronous_standby_names there (they name standbys the new primary lacks)
  3. repoints the replica's subscription (ALTER SUBSCRIPTION ... CONNECTION), unless its
     conninfo already lists the standby with target_session_attrs=read-write
  4. waits until the replica streams from the new primary, and says what to do next

environment:
  INVENTORY_PRIMARY_ADMIN_URL      the old primary (checked to be down); may list hosts
  INVENTORY_REPLICA_ADMIN_URL      the replica, as a role that may alter the subscription
  INVENTORY_SUBSCRIPTION_CONNINFO  the primary as the replica reaches it (the default for
                                   --subscription-conninfo is this aimed at --standby)
"""

NEXT_STEPS = """\
next, by hand:
  1. keep the old primary fenced: it must not start as a primary again (disable its
     service); rebuild it as a standby of the new one (pg_rewind or pg_basebackup)
  2. point INVENTORY_PRIMARY_URL and INVENTORY_PRIMARY_ADMIN_URL at the new primary and
     restart the API and workers, unless those URLs already list both hosts with
     target_session_attrs=read-write (then nothing restarts: they follow by themselves)
  3. once a new standby streams from the new primary with sync_replication_slots=on and
     the slot shows synced, set synchronized_standby_slots (and synchronous_standby_names
     for RPO 0) on the new primary again: until then a second failure loses data
"""


def _run(args: argparse.Namespace) -> int:
    from inventory.runtime import failover  # noqa: PLC0415 - psycopg only when run

    settings = MigrationSettings.from_env()

    def say(line: str) -> None:
        print(line, flush=True)  # noqa: T201 - command output

    slot, current = failover.subscription_slot(settings.replica_admin_url)
    failover.check_standby(args.standby, slot, say)
    failover.check_primary_gone(settings.primary_admin_url, say)
    conninfo = args.subscription_conninfo or failover.new_conninfo(current, args.standby)
    if args.check:
        say("ready: every check passed; run again without --check to fail over")
        return 0
    failover.promote(args.standby, say)
    failover.repoint(settings.replica_admin_url, conninfo, say)
    failover.wait_streaming(args.standby, slot, say)
    say(NEXT_STEPS.rstrip())
    return 0


def add(commands: Any) -> None:
    """Add `inventory failover` to the parser."""
    sub = add_command(
        commands,
        "failover",
        "The primary is lost and no Patroni runs: promote its standby and repoint the "
        "replica's subscription to it, after checks that refuse when that would lose data.",
        FAILOVER_ENV,
        _run,
    )
    sub.add_argument(
        "--standby",
        required=True,
        metavar="URL",
        help="the standby to promote, as a superuser (postgresql://... or key=value)",
    )
    sub.add_argument(
        "--subscription-conninfo",
        metavar="CONNINFO",
        help="the new primary as the replica's server reaches it, as a role with "
        "REPLICATION (default: the current one aimed at --standby)",
    )
    sub.add_argument("--check", action="store_true", help="run the checks only; change nothing")
