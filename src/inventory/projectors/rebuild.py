"""Online rebuilds: every event read once, folded in memory, COPYed into shadow tables.

One replica transaction, the rebuild's, holds it all together:

1. it takes each projector's advisory lock exclusively (`engine.LOCK_PREFIX`): a worker
   batch of those projectors, which takes it shared first, waits from then on, and one
   in flight is waited for;
2. it creates empty shadow tables without indexes (`read_model_shadow`, a function of
   projections/0022_rebuild_shadows.sql: the tables belong to the migrations' role);
3. it reads the events copy once, partition by partition (each partition's events in seq
   order, through a binary server-side cursor: one snapshot per partition), decodes each
   event once, feeds it to every projector's `Builder`, and COPYs the rows in. With more
   than one fold (`workers`), the partitions are shared out by event count between this
   process and helper processes; the rows of an item, a store's day or a product
   each come from one partition's events, so each fold is exact on its share; a read
   model with rows from several partitions (a stream's head: a transfer has events in
   two stores) merges the folds' rows after them (`Projector.merge_folds`). The folds
   then write into the shadows from their own transactions, so the shadows are created
   (empty, invisible to queries) in a transaction of their own first;
4. it indexes and analyses the shadows: in its transaction with one fold
   (`read_model_index`), or, the folds' rows committed, from one session per fold at
   once (`index_steps`); then it locks the old tables (a quarter of a second at a time,
   so readers never queue long behind a long query), drops them and renames the shadows
   in their place (`read_model_swap`);
5. it replaces the projectors' checkpoints with the last seq and position it read in
   each partition, and commits.

Until the commit, queries read the old tables; at the commit the new ones take over at
once, and the waiting worker batches resume from the new checkpoints. If anything
fails, the transaction rolls back and the committed shadows, if any, are dropped under
the same advisory locks (`read_model_discard`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from inventory.projectors import stalls
from inventory.projectors.engine import LOCK_PREFIX
from inventory.projectors.rebuild_contain import Fed, Stop, Stops
from inventory.projectors.rebuild_fold import (
    Heads,
    Helper,
    collected,
    fed_of,
    fold,
    reader_connection,
)
from inventory.projectors.rebuild_index import INDEX_MEMORY, index_steps
from inventory.projectors.rebuild_plan import Plan, SideBuild, make_plan
from inventory.projectors.stalls import Stall
from inventory.readmodels.projection import Cursor, Projector

CHUNK = 5000
SWAP_WAIT_MS = 250

CHECKPOINT = """
INSERT INTO projector_checkpoints (projector, partition, seq, position)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
"""


@dataclass
class _Run:
    """One rebuild's projectors, tables, helper processes and events read so far."""

    url: str
    projectors: Sequence[Projector]
    progress: Callable[[int], None]
    names: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    helpers: list[Helper] = field(default_factory=list)
    committed: bool = False  # shadows made in a transaction of their own (for helpers)
    read: int = 0

    def __post_init__(self) -> None:
        self.names = sorted(p.name for p in self.projectors)
        self.tables = [table for p in self.projectors for table in p.tables]

    def count(self, n: int) -> None:
        """Count `n` more events read, and report them."""
        self.read += n
        self.progress(n)


def rebuild(
    url: str,
    projectors: Sequence[Projector],
    progress: Callable[[int], None],
    *,
    chunk: int = CHUNK,
    workers: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] = lambda _: None,
    on_stall: Callable[[Stall], None] = lambda _: None,
    set_based: bool = True,
) -> int:
    """Rebuild `projectors` in one replica transaction; returns the events read. `workers`:
    folds at once (None: the plan's choice); `on_phase` gets each phase's name as it ends,
    `on_stall` each stall met once committed; `set_based` False folds every read model."""
    run = _Run(url, projectors, progress)
    with psycopg.connect(url) as conn:
        try:
            with conn.transaction(), conn.cursor() as cur:
                _lock(cur, run.names)
                plan = make_plan(cur, projectors, workers, on_total, set_based=set_based)
                run.committed = len(plan.groups) > 1
                _shadows(url, cur, run.tables, committed=run.committed)
                run.helpers.extend(Helper(url, plan.fed, g, chunk) for g in plan.groups[1:])
                on_phase("shadows")
                heads, stops = _fold_all(run, conn, plan, chunk=chunk, on_phase=on_phase)
                on_phase("merge")
                _index(url, cur, run.tables, committed=run.committed, sessions=len(plan.groups))
                on_phase("index")
                _swap(conn, run.names, run.tables, heads, stops)
                on_phase("swap")
        except BaseException:
            for helper in run.helpers:
                helper.stop()
            if run.committed:
                _discard(url, run.names, run.tables)
            raise
    for stall in (stop.stall for stop in stops.values()):
        on_stall(stall)
    return run.read


def _fold_all(
    run: _Run,
    conn: psycopg.Connection[Any],
    plan: Plan,
    *,
    chunk: int,
    on_phase: Callable[[str], None],
) -> tuple[Heads, Stops]:
    """This process's fold of its partitions, then the helpers' (merged), then the read
    models built by SQL: all the heads, and where projectors stopped."""
    with (
        reader_connection(run.url) as reader,
        _writer(run.url, conn, committed=run.committed) as out,
        out.transaction(),
        out.cursor() as into,
    ):
        fed = fed_of(*plan.fed, run.projectors)
        # With helpers, the SQL builds run beside the folds, up to the plan's bounds
        # (built again below for a read model a fold stopped); otherwise after the fold.
        side = SideBuild(run.url, plan) if run.helpers and plan.built else None
        heads, stops = _fold_own(run, reader, into, fed, plan, chunk=chunk)
        on_phase("fold")
        for _, builder in fed.builders:
            builder.finish(into)
        # The ledger of this process's partitions while the helpers still fold theirs.
        plan.build_ledger(into, stops, plan.groups[0])
        on_phase("finish")
        for helper in run.helpers:
            _add(heads, stops, helper.wait(run.count))
        on_phase("helpers")
        built = side.result() if side is not None else {}
        on_phase("sql")
        if run.helpers:
            for projector in run.projectors:
                if projector.name in plan.folded:
                    projector.merge_folds(into)
        plan.build_by_sql(into, stops, built)
        plan.build_ledger(into, stops, [p for group in plan.groups[1:] for p in group])
        on_phase("ledger")
    return heads, stops


def _fold_own(
    run: _Run,
    reader: psycopg.Connection[Any],
    into: Cursor,
    fed: Fed,
    plan: Plan,
    *,
    chunk: int,
) -> tuple[Heads, Stops]:
    """This process's fold of its partitions (none when no event needs reading)."""

    def progress(n: int) -> None:
        run.count(n + collected(run.helpers))

    if not plan.needs_fold:  # every read model by SQL, none that decodes
        progress(plan.total)
        return plan.heads(), {}
    return fold(reader, into, fed, plan.groups[0], chunk=chunk, progress=progress)


def _add(heads: Heads, stops: Stops, found: tuple[Heads, Stops]) -> None:
    heads.update(found[0])
    stops.update(found[1])


def _index(url: str, cur: Cursor, tables: list[str], *, committed: bool, sessions: int) -> None:
    """Index and analyse the shadows: from several sessions once committed, else in the
    rebuild's transaction."""
    if committed:
        index_steps(url, tables, sessions=sessions)
    else:
        # Index builds sort every row once: in memory rather than on disk.
        cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", (INDEX_MEMORY,))
        cur.execute("SELECT read_model_index(%s)", (tables,))


@contextmanager
def _writer(
    url: str, conn: psycopg.Connection[Any], *, committed: bool
) -> Iterator[psycopg.Connection[Any]]:
    """Where this process's fold writes: with committed shadows, a connection of its own
    (its transaction commits once the folds are merged, so other sessions can index the
    rows); otherwise the rebuild's own connection (a savepoint in its transaction)."""
    if not committed:
        yield conn
        return
    with psycopg.connect(url) as own:
        yield own


def _lock(cur: Cursor, names: Sequence[str]) -> None:
    for name in names:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + name,))


def _shadows(url: str, cur: Cursor, tables: list[str], *, committed: bool) -> None:
    """Empty shadows: in the rebuild's transaction, or committed for helpers to fill."""
    if committed:
        with psycopg.connect(url, autocommit=True) as side:
            side.execute("SELECT read_model_shadow(%s)", (tables,))
    else:
        cur.execute("SELECT read_model_shadow(%s)", (tables,))


def _swap(
    conn: psycopg.Connection[Any],
    names: Sequence[str],
    tables: list[str],
    heads: Heads,
    stops: Stops,
) -> None:
    """Swap the indexed shadows in, replace the checkpoints and the projectors' stalls
    (in the transaction): a projector stopped in a partition stays before its event."""
    with conn.cursor() as cur:
        _lock_old_tables(conn, tables)
        cur.execute("SELECT read_model_swap(%s)", (tables,))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = ANY(%s)", (names,))
        pairs = [
            (n, part, *_checkpoint(stops.get((n, part)), head))
            for n in names
            for part, head in heads.items()
        ]
        columns = [list(column) for column in zip(*pairs, strict=True)]
        cur.execute(CHECKPOINT, columns or [[], [], [], []])
        cur.execute("DELETE FROM projection_stalls WHERE projector = ANY(%s)", (names,))
    stalls.record(conn, [stop.stall for stop in stops.values()])


def _checkpoint(stop: Stop | None, head: tuple[int, int]) -> tuple[int, int]:
    return (stop.seq, stop.position) if stop is not None else head


def _discard(url: str, names: Sequence[str], tables: Sequence[str]) -> None:
    """Drop committed shadows of a failed rebuild, under its projectors' locks (so never
    the shadows of another rebuild that started since)."""
    try:
        with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + name,))
            cur.execute("SELECT read_model_discard(%s)", (list(tables),))
    except psycopg.Error:
        pass  # the next rebuild drops them first anyway


def _lock_old_tables(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """ACCESS EXCLUSIVE on every old table, tried for SWAP_WAIT at a time: a query that
    holds one (a long report) is waited for, but the queries that queue behind the lock
    request wait at most SWAP_WAIT per attempt, not for as long as that query runs."""
    statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    )
    pause = 0.05
    while True:
        try:
            with conn.transaction(), conn.cursor() as cur:  # a savepoint
                cur.execute(f"SET LOCAL lock_timeout = '{SWAP_WAIT_MS}ms'")
                cur.execute(statement)
                cur.execute("SET LOCAL lock_timeout = DEFAULT")
        except psycopg.errors.LockNotAvailable:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        else:
            return
