"""`inventory projections status | rebuild`: lag per projector, and rebuilds from events."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import psycopg
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import lags, project, reset
from inventory.projectors.registry import PROJECTORS, by_name


def status(replica_url: str, out: TextIO = sys.stdout) -> int:
    """Print each projector's checkpoint, the events copy's head and the gap; exit 0."""
    with psycopg.connect(replica_url) as conn:
        rows = lags(conn, PROJECTORS)
    print(f"{'projector':<20} {'partitions':>10} {'behind':>10} {'worst partition':<20}", file=out)
    for projector in PROJECTORS:
        own = [lag for lag in rows if lag.projector == projector.name]
        worst = max(own, key=lambda lag: lag.behind, default=None)
        behind = sum(lag.behind for lag in own)
        name = (worst.partition or "(global)") if worst and worst.behind else "-"
        print(f"{projector.name:<20} {len(own):>10} {behind:>10} {name:<20}", file=out)
    return 0


class Progress:
    """A one-line progress bar on a terminal, periodic lines elsewhere."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.done, self.out = max(total, 1), 0, out
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
        line = f"[{bar:<30}] {share:6.1%} {self.done}/{self.total} events {rate:,.0f}/s"
        end = "\r" if self.out.isatty() else "\n"
        print(line, end=end, file=self.out, flush=True)


def rebuild(replica_url: str, name: str, out: TextIO = sys.stderr) -> int:
    """Empty one projector's read model and replay every event into it."""
    projector = by_name(name)
    with ConnectionPool(replica_url, min_size=1, max_size=1, open=True) as pool:
        with pool.connection() as conn:
            reset(conn, projector)
            heads = lags(conn, [projector])
            total_row = conn.execute("SELECT count(*) FROM events").fetchone()
        progress = Progress(total_row[0] if total_row else 0, out)
        started = time.monotonic()
        applied = sum(project(pool, projector, lag.partition, progress=progress) for lag in heads)
    elapsed = time.monotonic() - started
    print(
        f"\nrebuilt {name}: {applied} events in {elapsed:.1f} s "
        f"({applied / max(elapsed, 1e-9):,.0f} events/s)",
        file=out,
    )
    return 0
