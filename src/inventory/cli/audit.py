"""`inventory audit verify` and `checkpoint`: check that the recorded history is whole.

An auditor's questions, each answered from the databases themselves: the primary's
streams (eventstore/verification.py: versions, events, states), its hash chains and the
newest signed checkpoint (eventstore/chain_checks.py: chains, signed), and the replica's
copy and projectors (projectors/verification.py: replica, order, stalls). Everything is
read-only and runs as the app role; `checkpoint` only writes a file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from inventory.cli.common import SERVER_ENV, actions, add_command
from inventory.cli.progress import Progress
from inventory.domain.events import ALL_EVENTS
from inventory.eventstore import checkpoints
from inventory.eventstore.chain_checks import check_chains, check_checkpoint
from inventory.eventstore.codec import Codec
from inventory.eventstore.verification import (
    Check,
    check_states,
    check_versions,
    connect,
    count_events,
)
from inventory.projectors.verification import check_order, check_replica, check_stalls
from inventory.runtime.settings import ConfigurationError, Settings
from inventory.security.events import IDENTITY_EVENTS


def verify(
    primary_url: str,
    replica_url: str,
    *,
    store: str | None = None,
    wait: float = 10.0,
    signing_key: str | None = None,
    checkpoint_dir: Path | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run every check, print the report; 0 when the history is whole and no projector
    is stalled, 1 otherwise."""
    started = time.monotonic()
    codec = Codec((*ALL_EVENTS, *IDENTITY_EVENTS))
    with connect(primary_url) as primary, connect(replica_url) as replica:
        total = count_events(primary, store)
        checks = [check_versions(primary, store)]
        decodes, states = check_states(primary_url, store, codec, Progress(total, err))
        print(file=err)
        checks += [decodes, states, check_chains(primary, store, Progress(total, err))]
        print(file=err)
        if checkpoint_dir is not None:
            checks.append(check_checkpoint(primary, signing_key, checkpoint_dir, store))
        checks.append(check_replica(primary, replica, store, wait))
        checks += [check_order(replica, store), check_stalls(replica, store)]
    scope = f"store {store}" if store else "every store"
    print(f"inventory audit verify: {scope}, {total:,} events on the primary", file=out)
    _print_checks(checks, out)
    elapsed = time.monotonic() - started
    if all(check.ok for check in checks):
        print(f"verified in {elapsed:.1f} s: the history is whole", file=out)
        return 0
    print(f"NOT verified ({elapsed:.1f} s): see the findings above", file=out)
    return 1


def _print_checks(checks: list[Check], out: TextIO) -> None:
    for check in checks:
        verdict = "ok" if check.ok else f"FAILED ({check.problems:,})"
        print(f"  {check.name:<9} {verdict:<14} {check.checked:,} {check.what} checked", file=out)
        for finding in check.findings:
            print(f"      {finding}", file=out)
        if check.problems > len(check.findings):
            print(f"      ... and {check.problems - len(check.findings):,} more", file=out)


def _run(args: argparse.Namespace) -> int:
    if args.action == "checkpoint":
        return checkpoint(Settings.from_env())
    if args.wait < 0:
        raise ConfigurationError("--wait must be a number of seconds, 0 or more")
    settings = Settings.from_env()
    # Session-bound (SET TimeZone, one snapshot over two cursors): never through PgBouncer.
    primary = settings.primary_direct_url or settings.primary_url
    return verify(
        primary,
        settings.replica_url,
        store=args.store,
        wait=args.wait,
        signing_key=settings.audit_signing_key,
        checkpoint_dir=settings.checkpoint_directory,
    )


def checkpoint(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Sign every chain's head and write it to the checkpoint folder; print where."""
    if settings.audit_signing_key is None:
        raise ConfigurationError("INVENTORY_AUDIT_SIGNING_KEY is not set: nothing can sign")
    key = checkpoints.signing_key(settings.audit_signing_key)
    with connect(settings.primary_url) as primary:
        path = checkpoints.take(primary, key, settings.checkpoint_directory)
    print(f"checkpoint written: {path}", file=out)
    print(
        f"public key (keep it with the file): {checkpoints.public_hex(key.public_key())}", file=out
    )
    return 0


def add(commands: Any) -> None:
    """Add `inventory audit` to the parser."""
    audit = add_command(
        commands,
        "audit",
        "Verify the recorded history: `verify` checks that every stream's versions run "
        "1..n without a gap and match its head, that every event decodes, that folding each "
        "stream reproduces its stored state, that every store's hash chain recomputes and "
        "holds the newest signed checkpoint, that the replica's events copy equals the "
        "primary's row for row, and that seq follows each stream's versions. Read-only; "
        "prints one line per check and the findings; exits 0 when all pass, 1 otherwise. "
        "`checkpoint` signs every chain's head (INVENTORY_AUDIT_SIGNING_KEY) into "
        "INVENTORY_AUDIT_CHECKPOINT_DIR: run it on a schedule and copy the files away.",
        SERVER_ENV,
        _run,
    )
    subcommands = actions(audit)
    audit_verify = subcommands.add_parser("verify", help="check the history is whole")
    audit_verify.add_argument("--store", help="only this store's events and streams")
    audit_verify.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to wait for replication before a difference counts (default 10)",
    )
    subcommands.add_parser("checkpoint", help="sign the chains' heads into a checkpoint file")
