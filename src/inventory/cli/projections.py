"""`inventory projections status | rebuild`: lag per projector, and rebuilds from events."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import psycopg

from inventory.projectors import stalls
from inventory.projectors.engine import lags
from inventory.projectors.rebuild import CHUNK
from inventory.projectors.rebuild import rebuild as rebuild_models
from inventory.projectors.registry import PROJECTORS, by_name


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


class Progress:
    """A one-line progress bar on a terminal, periodic lines elsewhere."""

    def __init__(self, total: int, out: TextIO, *, unit: str = "events") -> None:
        self.total, self.done, self.out, self.unit = max(total, 1), 0, out, unit
        self.started = self.last = time.monotonic()

    def __call__(self, count: int) -> None:
        """Record `count` more events applied."""
        self.done += count
        now = time.monotonic()
        if now - self.last < 0.2 and self.done < self.total:
            return
        self.last = now
        share = min(self.done / self.total, 1.0)
        rate = self.done / max(now - self.started, 1e-9)
        bar = "#" * int(share * 30)
        line = f"[{bar:<30}] {share:6.1%} {self.done}/{self.total} {self.unit} {rate:,.0f}/s"
        end = "\r" if self.out.isatty() else "\n"
        print(line, end=end, file=self.out, flush=True)


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
    rebuild left. `workers`: folds at once (`rebuild.rebuild`)."""
    names = [name] if isinstance(name, str) else list(name)
    projectors = [by_name(n) for n in names]
    label = ", ".join(names)
    progress = Progress(0, out)
    started = time.monotonic()

    def on_total(total: int) -> None:
        progress.total = max(total, 1)

    applied = rebuild_models(
        replica_url, projectors, progress, chunk=batch_size, workers=workers, on_total=on_total
    )
    elapsed = time.monotonic() - started
    print(
        f"\nrebuilt {label}: {applied} events in {elapsed:.1f} s "
        f"({applied / max(elapsed, 1e-9):,.0f} events/s)",
        file=out,
    )
    return 0
