"""`inventory projections status | rebuild`: lag per projector, and rebuilds from events."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import psycopg
from psycopg import sql

from inventory.projectors.engine import BATCH_SIZE, Projector, lags, project_batch
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
    replica_url: str, name: str, out: TextIO = sys.stderr, *, batch_size: int = BATCH_SIZE
) -> int:
    """Rebuild one projector's read model from every event, online.

    Everything happens in one replica transaction: the old rows are deleted (DELETE, not
    TRUNCATE, whose ACCESS EXCLUSIVE lock would block readers) and every partition is
    replayed, batch by batch. Until the commit, queries keep reading the old rows from
    their snapshots; at the commit the new ones take over at once. The live worker waits
    on the checkpoint rows meanwhile, then resumes from where the rebuild left them.
    """
    projector = by_name(name)
    with psycopg.connect(replica_url) as conn, conn.transaction():
        clear(conn, projector)
        heads = lags(conn, [projector])
        total_row = conn.execute("SELECT count(*) FROM events").fetchone()
        progress = Progress(total_row[0] if total_row else 0, out)
        started = time.monotonic()
        applied = sum(
            _replay(conn, projector, lag.partition, batch_size, progress) for lag in heads
        )
    elapsed = time.monotonic() - started
    print(
        f"\nrebuilt {name}: {applied} events in {elapsed:.1f} s "
        f"({applied / max(elapsed, 1e-9):,.0f} events/s)",
        file=out,
    )
    return 0


def _replay(
    conn: psycopg.Connection[Any],
    projector: Projector,
    partition: str,
    batch_size: int,
    progress: Progress,
) -> int:
    total = 0
    while True:
        count = project_batch(conn, projector, partition, batch_size)  # a savepoint each
        total += count
        if count:
            progress(count)
        if count < batch_size:
            return total


def clear(conn: psycopg.Connection[Any], projector: Projector) -> None:
    """Lock the projector's checkpoints, then delete its rows and checkpoints (in the
    caller's transaction, so readers see the old rows until it commits)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM projector_checkpoints WHERE projector = %s FOR UPDATE",
            (projector.name,),
        )
        for table in projector.tables:
            cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = %s", (projector.name,))
