"""The projector engine: per-partition (per-store) catch-up from the replica's events copy.

A projector reads events after its checkpoint in `seq` order and applies them to its
read model; the read-model writes and the new checkpoint commit in one replica
transaction. So a crash anywhere before that commit leaves both as they were, and
duplicate, lost or reordered wake-ups change nothing: a wake-up only says "look".

The worker's path, `catch_up_partitions` (catch_up.py), does that for every projector of one or more
partitions at once: one transaction per batch that locks all their checkpoints, reads each
partition's events after the lowest one once, hands each projector the events after its
own checkpoints (they differ after one projector's rebuild or reset) and advances them all
together. `project`
catches up one projector alone (a rebuild in progress, tests). A batch that fails rolls
back whole; finding the projector and the event, and keeping the other stores going, is
`containment.isolate`'s and the worker's part (worker/containment.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from inventory.readmodels.projection import Cursor, Projector, ReplicaEvent

BATCH_SIZE = 1000
# The advisory lock of a projector (hashtext of this and its name): shared by each batch,
# exclusive during a rebuild.
LOCK_PREFIX = "inventory.projector:"


SELECT_EVENTS = """
SELECT seq, position, stream, version, type, store, sku, data::text, metadata::text,
       occurred_at, recorded_at, partition
FROM events WHERE partition = %s AND seq > %s ORDER BY seq LIMIT %s
"""


def read_events(cur: Cursor, partition: str, after: int, limit: int) -> list[ReplicaEvent]:
    """Up to `limit` events of `partition` after seq `after`, in seq order."""
    cur.execute(SELECT_EVENTS, (partition, after, limit))
    return [
        ReplicaEvent(*r[:7], r[7].encode(), r[8].encode(), *r[9:])  # type: ignore[call-arg]
        for r in cur.fetchall()
    ]


def lock_checkpoint(cur: Cursor, projector: str, partition: str) -> int | None:
    """The projector's checkpoint in `partition`, its row locked until the commit; None
    when the partition has no events (and so no row: a rebuild would not make one)."""
    # The checkpoint row is the partition's lock: a second worker woken for the same
    # store waits here, then reads from wherever the first one committed. Waiting (not
    # SKIP LOCKED) matters: a skipped wake-up could be the only one for an event the
    # first worker's last read did not see.
    #
    # The shared lock on the projector's name comes first, in the same statement: a
    # rebuild holds it exclusively from its start to its swap (rebuild.py), so no batch
    # writes to the tables it is replacing, not even one of a partition it has not seen.
    # (OFFSET 0 keeps it a subquery, so the lock is taken even when the row is not made.)
    cur.execute(
        "INSERT INTO projector_checkpoints (projector, partition)"
        " SELECT %s, %s FROM (SELECT pg_advisory_xact_lock_shared(hashtext(%s)),"
        " EXISTS (SELECT FROM events WHERE partition = %s) AS present OFFSET 0) AS rebuild"
        " WHERE rebuild.present ON CONFLICT DO NOTHING",
        (projector, partition, LOCK_PREFIX + projector, partition),
    )
    cur.execute(
        "SELECT seq FROM projector_checkpoints WHERE projector = %s AND partition = %s FOR UPDATE",
        (projector, partition),
    )
    row = cur.fetchone()
    return None if row is None else int(row[0])


def project_batch(
    conn: psycopg.Connection[Any], projector: Projector, partition: str, batch_size: int
) -> int:
    """One transaction: lock, read after the checkpoint, apply, advance. Returns the count."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        checkpoint = lock_checkpoint(cur, projector.name, partition)
        if checkpoint is None:
            return 0
        events = read_events(cur, partition, checkpoint, batch_size)
        if not events:
            return 0
        projector.apply(cur, events)
        advance(cur, projector.name, partition, events)
    return len(events)


def advance(cur: Cursor, projector: str, partition: str, events: Sequence[ReplicaEvent]) -> None:
    """Move the (locked) checkpoint past `events`, the last of which has the highest seq."""
    cur.execute(
        "UPDATE projector_checkpoints SET seq = %s, position = greatest(position, %s),"
        " updated_at = now() WHERE projector = %s AND partition = %s",
        (events[-1].seq, max(e.position for e in events), projector, partition),
    )


def project(
    pool: ConnectionPool,
    projector: Projector,
    partition: str,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Catch `projector` up on `partition`, batch by batch; returns the events applied."""
    total = 0
    with pool.connection() as conn:
        while True:
            count = project_batch(conn, projector, partition, batch_size)
            total += count
            if progress is not None and count:
                progress(count)
            if count < batch_size:
                return total


def reset(conn: psycopg.Connection[Any], projector: Projector) -> None:
    """Empty the projector's tables and checkpoints, so it rebuilds from the first event."""
    with conn.transaction(), conn.cursor() as cur:
        # Lock every checkpoint row first: a worker mid-batch finishes before we clear.
        # In partition order, as a worker's batch locks them: neither waits on the other
        # holding a row it needs.
        cur.execute(
            "SELECT 1 FROM projector_checkpoints WHERE projector = %s"
            " ORDER BY partition FOR UPDATE",
            (projector.name,),
        )
        for table in projector.tables:
            cur.execute(psycopg.sql.SQL("TRUNCATE {}").format(psycopg.sql.Identifier(table)))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = %s", (projector.name,))
