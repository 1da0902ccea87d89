"""The projector engine: per-partition (per-store) catch-up from the replica's events copy.

A projector reads events after its checkpoint in `seq` order and applies them to its
read model; the read-model writes and the new checkpoint commit in one replica
transaction. So a crash anywhere before that commit leaves both as they were, and
duplicate, lost or reordered wake-ups change nothing: a wake-up only says "look".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

Cursor = psycopg.Cursor[Any]

BATCH_SIZE = 1000
# The advisory lock of a projector (hashtext of this and its name): shared by each batch,
# exclusive during a rebuild.
LOCK_PREFIX = "inventory.projector:"


@dataclass(frozen=True, slots=True)
class ReplicaEvent:
    """An event as the replica holds it: the primary's columns plus `seq`."""

    seq: int
    position: int
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    data: bytes
    metadata: bytes
    occurred_at: datetime
    recorded_at: datetime
    partition: str


def shadow(table: str) -> str:
    """The name a table's replacement has while a rebuild fills it."""
    return f"{table}__rebuild"


class Builder(Protocol):
    """A projector's read model folded from every event in memory, for a rebuild: fed the
    events in seq order, it writes into the shadow tables (`shadow(table)`)."""

    prefixes: tuple[str, ...]  # the event types whose domain event `feed` needs decoded

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Fold one event (`decoded`: its domain event if its type has a prefix, or None)."""

    def flush(self, cur: Cursor) -> None:
        """Write what is final already (called between chunks of events)."""

    def finish(self, cur: Cursor) -> None:
        """Write the rest, after the last event."""


class Projector:
    """A named read model built from events, one partition (store) at a time.

    Subclasses name the tables they own (cleared on rebuild) and either map event types
    to handlers or override `apply` to handle a whole batch at once.
    """

    name: str = ""
    tables: tuple[str, ...] = ()

    def handlers(self) -> dict[str, Callable[[Cursor, ReplicaEvent], None]]:
        """Event type → handler; types without a handler are not this projector's concern."""
        return {}

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Apply a batch of one partition's events, in seq order, inside the transaction."""
        handlers = self.handlers()
        for event in events:
            handler = handlers.get(event.type)
            if handler is not None:
                handler(cur, event)

    def builder(self) -> Builder:
        """A fresh in-memory fold of this read model, for `rebuild`."""
        raise NotImplementedError(f"{self.name} has no rebuild builder")


SELECT_EVENTS = """
SELECT seq, position, stream, version, type, store, sku, data::text, metadata::text,
       occurred_at, recorded_at, partition
FROM events WHERE partition = %s AND seq > %s ORDER BY seq LIMIT %s
"""


def _lock_checkpoint(cur: Cursor, projector: str, partition: str) -> int:
    # The checkpoint row is the partition's lock: a second worker woken for the same
    # store waits here, then reads from wherever the first one committed. Waiting (not
    # SKIP LOCKED) matters: a skipped wake-up could be the only one for an event the
    # first worker's last read did not see.
    #
    # The shared lock on the projector's name comes first, in the same statement: a
    # rebuild holds it exclusively from its start to its swap (rebuild.py), so no batch
    # writes to the tables it is replacing, not even one of a partition it has not seen.
    cur.execute(
        "INSERT INTO projector_checkpoints (projector, partition)"
        " SELECT %s, %s FROM (SELECT pg_advisory_xact_lock_shared(hashtext(%s))) AS rebuild"
        " ON CONFLICT DO NOTHING",
        (projector, partition, LOCK_PREFIX + projector),
    )
    cur.execute(
        "SELECT seq FROM projector_checkpoints WHERE projector = %s AND partition = %s FOR UPDATE",
        (projector, partition),
    )
    row = cur.fetchone()
    assert row is not None
    seq: int = row[0]
    return seq


def project_batch(
    conn: psycopg.Connection[Any], projector: Projector, partition: str, batch_size: int
) -> int:
    """One transaction: lock, read after the checkpoint, apply, advance. Returns the count."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        checkpoint = _lock_checkpoint(cur, projector.name, partition)
        cur.execute(SELECT_EVENTS, (partition, checkpoint, batch_size))
        events = [
            ReplicaEvent(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7].encode(),
                r[8].encode(),
                r[9],
                r[10],
                r[11],
            )
            for r in cur.fetchall()
        ]
        if not events:
            return 0
        projector.apply(cur, events)
        cur.execute(
            "UPDATE projector_checkpoints SET seq = %s, position = greatest(position, %s),"
            " updated_at = now() WHERE projector = %s AND partition = %s",
            (events[-1].seq, max(e.position for e in events), projector.name, partition),
        )
    return len(events)


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


# A loose index scan: one index probe per partition, not a scan of every event.
PARTITION_HEADS = """
WITH RECURSIVE parts AS (
    (SELECT partition FROM events ORDER BY partition LIMIT 1)
    UNION ALL
    SELECT (SELECT e.partition FROM events e WHERE e.partition > parts.partition
            ORDER BY e.partition LIMIT 1)
    FROM parts WHERE parts.partition IS NOT NULL
)
SELECT partition, (SELECT max(seq) FROM events e WHERE e.partition = parts.partition)
FROM parts WHERE partition IS NOT NULL
"""


@dataclass(frozen=True)
class Lag:
    """How far one projector trails the events copy in one partition."""

    projector: str
    partition: str
    checkpoint: int
    head: int

    @property
    def behind(self) -> int:
        """Events not yet applied (by seq distance, an upper bound)."""
        return max(self.head - self.checkpoint, 0)


def lags(conn: psycopg.Connection[Any], projectors: Sequence[Projector]) -> list[Lag]:
    """Every (projector, partition) pair with its checkpoint and the partition's last seq."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(PARTITION_HEADS)
        heads: dict[str, int] = dict(cur.fetchall())
        cur.execute("SELECT projector, partition, seq FROM projector_checkpoints")
        checkpoints = {(p, part): seq for p, part, seq in cur.fetchall()}
    return [
        Lag(projector.name, partition, checkpoints.get((projector.name, partition), 0), head)
        for projector in projectors
        for partition, head in sorted(heads.items())
    ]


def reset(conn: psycopg.Connection[Any], projector: Projector) -> None:
    """Empty the projector's tables and checkpoints, so it rebuilds from the first event."""
    with conn.transaction(), conn.cursor() as cur:
        # Lock every checkpoint row first: a worker mid-batch finishes before we clear.
        cur.execute(
            "SELECT 1 FROM projector_checkpoints WHERE projector = %s FOR UPDATE",
            (projector.name,),
        )
        for table in projector.tables:
            cur.execute(psycopg.sql.SQL("TRUNCATE {}").format(psycopg.sql.Identifier(table)))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = %s", (projector.name,))
