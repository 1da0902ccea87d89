"""Online rebuilds: every event read once, folded in memory, COPYed into shadow tables.

One replica transaction does it all:

1. it takes each projector's advisory lock exclusively (`engine.LOCK_PREFIX`): a worker
   batch of those projectors, which takes it shared first, waits from then on, and one
   in flight is waited for;
2. it creates empty shadow tables without indexes (`read_model_shadow`, a function of
   projections/0022_rebuild_shadows.sql: the tables belong to the migrations' role);
3. it reads the events copy once, in seq order, through a server-side cursor (one
   snapshot), decodes each event once, feeds it to every projector's `Builder`, and
   COPYs the rows in;
4. it indexes and analyses the shadows (`read_model_index`), locks the old tables (a
   quarter of a second at a time, so readers never queue long behind a long query),
   drops them and renames the shadows in their place (`read_model_swap`);
5. it replaces the projectors' checkpoints with the last seq and position it read in
   each partition, and commits.

Until the commit, queries read the old tables; at the commit the new ones take over at
once, and the waiting worker batches resume from the new checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from inventory.projectors.decoding import domain_event
from inventory.projectors.engine import LOCK_PREFIX, Projector, ReplicaEvent

CHUNK = 5000
SWAP_WAIT_MS = 250

ALL_EVENTS = """
SELECT seq, position, stream, version, type, store, sku, data::text, metadata::text,
       occurred_at, recorded_at, partition
FROM events ORDER BY seq
"""
CHECKPOINT = """
INSERT INTO projector_checkpoints (projector, partition, seq, position)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
"""


def rebuild(
    conn: psycopg.Connection[Any],
    projectors: Sequence[Projector],
    progress: Callable[[int], None],
    *,
    chunk: int = CHUNK,
) -> int:
    """Rebuild `projectors` in one transaction on `conn`; returns the events read."""
    names = sorted(p.name for p in projectors)
    tables = [table for p in projectors for table in p.tables]
    builders = [p.builder() for p in projectors]
    prefixes = tuple(prefix for b in builders for prefix in b.prefixes)
    heads: dict[str, tuple[int, int]] = {}  # partition: last seq, highest position
    read = 0
    with conn.transaction(), conn.cursor() as cur:
        for name in names:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + name,))
        cur.execute("SELECT read_model_shadow(%s)", (tables,))
        # Index builds sort every row once: in memory rather than in batches on disk.
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        with conn.cursor("rebuild_events", row_factory=tuple_row) as events:
            events.itersize = chunk
            events.execute(ALL_EVENTS)
            while rows := events.fetchmany(chunk):
                for r in rows:
                    event = ReplicaEvent(*r[:7], r[7].encode(), r[8].encode(), *r[9:])  # type: ignore[call-arg]
                    decoded = domain_event(event) if event.type.startswith(prefixes) else None
                    for builder in builders:
                        builder.feed(event, decoded)
                    head = heads.get(event.partition)
                    position = event.position if head is None else max(head[1], event.position)
                    heads[event.partition] = (event.seq, position)
                for builder in builders:
                    builder.flush(cur)
                read += len(rows)
                progress(len(rows))
        for builder in builders:
            builder.finish(cur)
        cur.execute("SELECT read_model_index(%s)", (tables,))
        _lock_old_tables(conn, tables)
        cur.execute("SELECT read_model_swap(%s)", (tables,))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = ANY(%s)", (names,))
        pairs = [(name, part, seq, pos) for name in names for part, (seq, pos) in heads.items()]
        cur.execute(CHECKPOINT, [list(column) for column in zip(*pairs, strict=True)] or
                    [[], [], [], []])  # fmt: skip
    return read


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
