"""`inventory projections status | rebuild`: lag per projector, and rebuilds from events."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import psycopg

from inventory.cli.common import SERVER_ENV, actions, add_command
from inventory.cli.progress import Progress
from inventory.projectors import stalls
from inventory.projectors.lag import lags
from inventory.projectors.rebuild import CHUNK
from inventory.projectors.rebuild import rebuild as rebuild_models
from inventory.projectors.stalls import Stall
from inventory.readmodels.registry import PROJECTORS, by_name
from inventory.runtime.settings import ConfigurationError, Settings


def status(replica_url: str, out: TextIO = sys.stdout) -> int:
    """Print each projector's checkpoint, the events copy's head and the gap, then any
    stall (a projector stopped at an event it cannot apply); exit 0."""
    with psycopg.connect(replica_url) as conn:
        rows = lags(conn, PROJECTORS)
        stalled = stalls.live(conn)
    print(f"{'projector':<20} {'partitions':>10} {'behind':>10} {'worst partition':<20}", file=out)
    for projector in PROJECTORS:
        own = [lag for lag in rows if lag.projector == projector.name]
        worst = max(own, key=lambda lag: lag.behind, default=None)
        behind = sum(lag.behind for lag in own)
        name = (worst.partition or "(global)") if worst and worst.behind else "-"
        print(f"{projector.name:<20} {len(own):>10} {behind:>10} {name:<20}", file=out)
    for stall in stalled:
        print(f"STALLED: {stall.describe()} ({stall.attempts} attempts)", file=out)
    return 0


def rebuild(
    replica_url: str,
    name: str | Sequence[str],
    out: TextIO = sys.stderr,
    *,
    batch_size: int = CHUNK,
    workers: int | None = None,
) -> int:
    """Rebuild one projector's read model (or several, `name` a list) from every event,
    online: in one replica transaction, into shadow tables that replace the old ones at
    its commit (`rebuild.py`). Until then queries keep reading the old rows; the live
    worker waits on the projector's lock meanwhile, then resumes from the checkpoints the
    rebuild left. `workers`: folds at once (`rebuild.rebuild`). A projector that cannot
    take an event stops there in its partition, recorded as a stall as the worker records
    it; the rest is rebuilt and committed, the stalls printed, and the exit status is 1."""
    names = [name] if isinstance(name, str) else list(name)
    progress = Progress(0, out)
    started = time.monotonic()

    def on_total(total: int) -> None:
        progress.total = max(total, 1)

    stalled: list[Stall] = []
    applied = rebuild_models(
        replica_url,
        [by_name(n) for n in names],
        progress,
        chunk=batch_size,
        workers=workers,
        on_total=on_total,
        on_stall=stalled.append,
    )
    elapsed = time.monotonic() - started
    rate = applied / max(elapsed, 1e-9)
    label = f"{', '.join(names)}: {applied} events in {elapsed:.1f} s ({rate:,.0f} events/s)"
    print(f"\nrebuilt {label}", file=out)
    # As the worker does: the rest is rebuilt, each stall recorded (health shows it).
    for stall in stalled:
        print(stall.describe(), file=out)
    return 1 if stalled else 0


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.action == "status":
        return status(settings.replica_url)
    names = [p.name for p in PROJECTORS] if args.all else args.names
    if not names:
        raise ConfigurationError("name the projectors to rebuild, or pass --all")
    try:
        return rebuild(settings.replica_url, names)
    except KeyError as error:
        raise ConfigurationError(str(error.args[0])) from None


def add(commands: Any) -> None:
    """Add `inventory projections` to the parser."""
    projections = add_command(
        commands,
        "projections",
        "Inspect and rebuild the read models on the replica: `status` shows how far each "
        "projector trails the events copy; `rebuild NAME... | --all` replays every event "
        "into fresh tables that replace the read models' at the end, with a progress bar.",
        SERVER_ENV,
        _run,
    )
    projection_actions = actions(projections)
    projection_actions.add_parser("status", help="each projector's lag")
    rebuild_models = projection_actions.add_parser(
        "rebuild", help="rebuild projectors from the events copy (one pass over it for all)"
    )
    rebuild_models.add_argument("names", nargs="*", metavar="NAME", help="a projector, e.g. stock")
    rebuild_models.add_argument("--all", action="store_true", help="every projector")
