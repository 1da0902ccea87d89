"""The rebuild's server floor: what PostgreSQL alone takes to take in the read models.

    uv run python bench/rebuild_floor.py [--stores 20] [--skus 500] [--events 200000]
                                         [--home DIR] [--runs 1] [--quick]

Loads the events as bench/read_side.py does (or reuses `--home`, a topology loaded by an
earlier run: it is kept then), then per run, each figure with the replica's CPU time
beside it (its postmaster and everything it forked: backends, parallel workers,
autovacuum; before each figure it vacuums and waits for autovacuum to be idle):

- the copy floor: `INSERT ... SELECT` of the events copy into a scratch table (as
  read_side.py's baseline);
- the rebuild of every read model in one pass, twice: with every read model folded in
  Python (`set_based=False`: the rebuild before stream heads and daily totals went to
  SQL) and as `inventory projections rebuild --all` runs it (those two by SQL), phase
  by phase;
- the server floor: the rebuild's rows with no Python fold in the way. The read models
  the rebuild wrote are saved with `COPY ... TO STDOUT (FORMAT BINARY)` beforehand (not
  timed); then the server reads every partition's events through the rebuild's own
  query (as a binary COPY out, serial as the rebuild's cursor is, the bytes discarded:
  no row decoding in this process) and, in one transaction rolled back at the end,
  creates the shadows (`read_model_shadow`), takes the saved rows in by binary COPY,
  table by table, and builds the shadows' constraints and indexes one by one and
  analyses them (what `read_model_index` does, with the rebuild's
  `maintenance_work_mem`). Its sum is what a rebuild into this schema costs the server
  however fast the fold is: if it exceeds the goal's 5x of the copy floor, the goal is
  beyond this schema on this machine.

It prints `BENCH-RESULT {json}` lines (for bench/run.py): the rebuild's time over the
server floor's in the same run (issue 19's goal: at most 1.5x; the best run with
`--runs`), and the server floor over the copy floor. `--quick`: 60,000 events, one run
(about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from inventory.cli import projections as admin
from inventory.projectors.rebuild import rebuild
from inventory.projectors.rebuild_fold import PARTITION_EVENTS
from inventory.readmodels.projection import shadow
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from read_side import GOAL, copy_baseline, load, wait_replicated  # bench/ is on sys.path

FLOOR_GOAL = 1.5  # issue 19: the rebuild within 1.5x of the server floor of the same run
TABLES = [table for projector in PROJECTORS for table in projector.tables]
INDEX_MEMORY = "256MB"  # the rebuild's maintenance_work_mem (rebuild.INDEX_MEMORY)
PHASES = {
    "shadows": "locks, event counts, shadows, helper started",
    "fold": "this process's fold (the helper's side by side)",
    "finish": "this process's last rows (levels, daily totals, heads, alerts), its ledger by SQL",
    "helpers": "waiting for the helper's fold and commit",
    "sql": "waiting for the SQL builds beside the folds (heads, daily totals)",
    "ledger": "stream heads merged (all folded), SQL builds (one fold), helpers' ledger by SQL",
    "merge": "commit of the folds' rows",
    "index": "constraints, indexes, ANALYZE",
    "swap": "old tables locked and dropped, shadows renamed, checkpoints",
    "commit": "commit",
}

CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s::regclass AND contype IN ('p', 'u')
"""
INDEXES = """
SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = %s::regclass
  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""


class ServerClock:
    """CPU seconds of a PostgreSQL server: its postmaster's own and reaped children's,
    plus its live children's (backends, parallel workers)."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = psutil.Process(postmaster)

    def __call__(self) -> float:
        times = self.postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.postmaster.children():
            try:
                own = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += own.user + own.system
        return float(total)


class Phases:
    """Wall and server CPU seconds per named phase, printed in order."""

    def __init__(self, server: ServerClock) -> None:
        self.server = server
        self.rows: list[tuple[str, float, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name`."""
        wall, cpu = time.monotonic(), self.server()
        yield
        self.rows.append((name, time.monotonic() - wall, self.server() - cpu))

    def total(self, prefix: str = "") -> tuple[float, float]:
        """Wall and server CPU summed over the phases whose name starts with `prefix`."""
        found = [(w, c) for name, w, c in self.rows if name.startswith(prefix)]
        return sum(w for w, _ in found), sum(c for _, c in found)


def settle(settings: Settings) -> None:
    """Vacuum what the last rebuild wrote and wait for autovacuum to be idle, so neither
    its workers nor the last rebuild's backends, reaped late, count in the next figure."""
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("VACUUM (ANALYZE) {}").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in ["events", *TABLES])
            )
        )
        busy = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
        deadline = time.monotonic() + 120
        while conn.execute(busy).fetchone() != (0,) and time.monotonic() < deadline:
            time.sleep(0.5)
    time.sleep(1)


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the rebuild's helpers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def save_read_models(url: str) -> dict[str, bytes]:
    """Every read-model table's rows in COPY's binary format (columns in table order)."""
    saved: dict[str, bytes] = {}
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table in TABLES:
            buffer = io.BytesIO()
            statement = sql.SQL("COPY {} TO STDOUT (FORMAT BINARY)").format(sql.Identifier(table))
            with cur.copy(statement) as copy:
                for block in copy:
                    buffer.write(block)
            saved[table] = buffer.getvalue()
    return saved


def count_rows(url: str) -> dict[str, int]:
    """Rows per read-model table."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]  # type: ignore[index]
            for table in TABLES
        }


def server_floor(settings: Settings, saved: dict[str, bytes], phases: Phases) -> None:
    """Read the events, take the saved rows in, index and analyse; roll back."""
    with psycopg.connect(settings.replica_admin_url) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT partition FROM events GROUP BY partition ORDER BY partition")
            partitions = [row[0] for row in cur.fetchall()]
        # Serial, as the rebuild's cursor is (PostgreSQL plans no parallel query for one).
        conn.execute("SET max_parallel_workers_per_gather = 0")
        with phases.phase("read events (the rebuild's query, COPY out, bytes discarded)"):
            for partition in partitions:
                statement = f"COPY ({PARTITION_EVENTS}) TO STDOUT (FORMAT BINARY)"
                with conn.cursor() as cur, cur.copy(statement, (partition, 2**62)) as copy:
                    for _ in copy:
                        pass
                conn.commit()
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_MEMORY}'")
            with phases.phase("create shadows"):
                cur.execute("SELECT read_model_shadow(%s)", (TABLES,))
            for table in TABLES:
                with phases.phase(f"COPY in {table} ({len(saved[table]) / 1e6:.0f} MB binary)"):
                    target = sql.Identifier(shadow(table))
                    intake = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(target)
                    with cur.copy(intake) as copy:
                        copy.write(saved[table])
            for table in TABLES:
                index_table(cur, table, phases)


def index_table(cur: psycopg.Cursor[Any], table: str, phases: Phases) -> None:
    """What read_model_index does for one table, statement by statement, each timed."""
    target = sql.Identifier(shadow(table))
    cur.execute(CONSTRAINTS, (table,))
    for name, definition in cur.fetchall():
        with phases.phase(f"index {table}: {definition}"):
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    target, sql.Identifier(name + "__rebuild"), sql.SQL(definition)
                )
            )
    cur.execute(INDEXES, (table,))
    for name, definition in cur.fetchall():
        head, _, rest = definition.partition(" USING ")
        create = f"CREATE {'UNIQUE ' if 'UNIQUE' in head else ''}INDEX"
        statement = sql.SQL("{} {} ON {} USING {}").format(
            sql.SQL(create), sql.Identifier(name + "__rebuild"), target, sql.SQL(rest)
        )
        with phases.phase(f"index {table}: {name}"):
            cur.execute(statement)
    with phases.phase(f"analyse {table}"):
        cur.execute(sql.SQL("ANALYZE {}").format(target))


def timed(clock: ServerClock, work: Callable[[], object]) -> tuple[float, float, float]:
    """Wall, server CPU and this process's (with its helpers') CPU seconds of `work`."""
    wall, server, own = time.monotonic(), clock(), own_cpu()
    work()
    return time.monotonic() - wall, clock() - server, own_cpu() - own


def rebuild_all(settings: Settings, phases: Phases, *, set_based: bool = True) -> None:
    """What `inventory projections rebuild --all` runs (admin.rebuild, without its progress
    bar), each phase of rebuild.rebuild timed as it ends. `set_based` False: every read
    model folded in Python (the code before stream heads and daily totals went to SQL)."""
    started = [time.monotonic(), phases.server()]

    def ended(name: str) -> None:
        now, cpu = time.monotonic(), phases.server()
        phases.rows.append((PHASES.get(name, name), now - started[0], cpu - started[1]))
        started[:] = [now, cpu]

    rebuild(settings.replica_url, PROJECTORS, lambda _: None, on_phase=ended, set_based=set_based)
    ended("commit")


def bench_result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One headline figure for bench/run.py."""
    found = {"bench": "rebuild_floor", "metric": metric, "value": round(value, 2)}
    print("BENCH-RESULT " + json.dumps({**found, "goal": goal, "met": met}))


def one_run(
    settings: Settings, clock: ServerClock, saved: dict[str, bytes], *, rebuild: bool
) -> tuple[float, float, float, float]:
    """The copy floor, a rebuild of every read model, the server floor: each printed;
    returns their seconds (the rebuilds' 0 when skipped), the all-folded rebuild last."""
    settle(settings)
    wall, server, _ = timed(clock, lambda: copy_baseline(settings))
    print(f"  copy floor (INSERT ... SELECT) {wall:6.2f} s  (server CPU {server:5.2f} s)")
    took = folded = 0.0
    if rebuild:
        folded = timed_rebuild(settings, clock, wall, set_based=False)
        took = timed_rebuild(settings, clock, wall, set_based=True)
    phases = Phases(clock)
    settle(settings)
    server_floor(settings, saved, phases)
    for name, seconds, cpu in phases.rows:
        print(f"    {seconds:6.2f} s  server CPU {cpu:5.2f} s  {name}")
    for label, prefix in (
        ("read events", "read"),
        ("COPY in", "COPY"),
        ("indexes", "index"),
        ("analyse", "analyse"),
    ):
        seconds, cpu = phases.total(prefix)
        print(f"  {label:<20} {seconds:6.2f} s  (server CPU {cpu:5.2f} s)")
    total, cpu = phases.total()
    print(
        f"  server floor         {total:6.2f} s  (server CPU {cpu:5.2f} s)"
        f"  {total / wall:5.1f}x the copy floor, {cpu / server:4.1f}x its CPU"
        f"  (goal <= {GOAL:.0f}x)"
    )
    if took:
        print(
            f"  rebuild / server floor {took / total:5.2f}x  (goal <= {FLOOR_GOAL}x;"
            f" every read model folded in Python: {folded / total:5.2f}x)"
        )
    return wall, took, total, folded


def timed_rebuild(settings: Settings, clock: ServerClock, copy: float, *, set_based: bool) -> float:
    """A rebuild of every read model, printed phase by phase; its seconds."""
    settle(settings)
    steps = Phases(clock)
    took, cpu, own = timed(clock, lambda: rebuild_all(settings, steps, set_based=set_based))
    label = "rebuild --all" if set_based else "rebuild --all, all folded"
    print(
        f"  {label:<25} {took:6.2f} s  (server CPU {cpu:5.2f} s, folds {own:5.2f} s)"
        f"  {took / copy:5.1f}x the copy floor"
    )
    for name, seconds, cpu in steps.rows:
        print(f"    {seconds:6.2f} s  server CPU {cpu:5.2f} s  {name}")
    return took


def report(runs: list[tuple[float, float, float, float]], events: int) -> None:
    """The BENCH-RESULT lines: the best run's ratios."""
    copy, took, floor, _ = min(runs, key=lambda run: run[1] / run[2])
    size = f"{events:,} events"
    if took:
        ratio = took / floor
        goal = f"<= {FLOOR_GOAL}x"
        bench_result(f"rebuild --all / server floor ({size})", ratio, goal, ratio <= FLOOR_GOAL)
        best = min(run[3] / run[2] for run in runs)
        bench_result(f"rebuild --all, all folded (before) / server floor ({size})", best, "", None)
    bench_result(f"server floor / copy floor ({size})", floor / copy, "", None)


def main() -> int:
    """Run the benchmark and print the figures beside the copy floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--home", type=Path, help="reuse (or load and keep) this topology")
    parser.add_argument("--runs", type=int, default=1, help="rebuilds and floors, in turn")
    parser.add_argument("--skip-rebuild", action="store_true", help="the floors only")
    parser.add_argument("--quick", action="store_true", help="60,000 events, one run (~1 min)")
    args = parser.parse_args()
    if args.quick:
        args.events, args.runs = min(args.events, 60_000), 1
    root = args.home or Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=False)
    try:
        env = topology.start()
        settings = Settings.from_env({**os.environ, **env})
        assert topology.replica is not None and topology.replica.process is not None
        clock = ServerClock(topology.replica.process.pid)
        if wait_replicated(settings) == 0:
            started = time.monotonic()
            asyncio.run(load(settings.primary_url, args.stores, args.skus, args.events))
            print(f"loaded in {time.monotonic() - started:.1f} s")
            wait_replicated(settings)
            # Where read_side.py measures its baseline: right after the load.
            wall, server, _ = timed(clock, lambda: copy_baseline(settings))
            print(f"copy floor just after the load {wall:6.2f} s  (server CPU {server:5.2f} s)")
        count = wait_replicated(settings)
        print(f"{count:,} events")
        names = [p.name for p in PROJECTORS]
        if not args.skip_rebuild or count_rows(settings.replica_url)["stock_ledger"] == 0:
            admin.rebuild(settings.replica_url, names, out=io.StringIO())  # warm, and rows
        rows = count_rows(settings.replica_url)
        print("read-model rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
        saved = save_read_models(settings.replica_url)
        runs = []
        for run in range(args.runs):
            print(f"\nrun {run + 1}:")
            runs.append(one_run(settings, clock, saved, rebuild=not args.skip_rebuild))
        report(runs, count)
    finally:
        topology.stop()
        if args.home is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
