"""The projector engine: per-partition (per-store) catch-up from the replica's events copy.

A projector reads events after its checkpoint in `seq` order and applies them to its
read model; the read-model writes and the new checkpoint commit in one replica
transaction. So a crash anywhere before that commit leaves both as they were, and
duplicate, lost or reordered wake-ups change nothing: a wake-up only says "look".

The worker's path, `catch_up_partitions`, does that for every projector of one or more
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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import msgspec
import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

Cursor = psycopg.Cursor[Any]

BATCH_SIZE = 1000
# The advisory lock of a projector (hashtext of this and its name): shared by each batch,
# exclusive during a rebuild.
LOCK_PREFIX = "inventory.projector:"


class ReplicaEvent(msgspec.Struct, frozen=True):
    """An event as the replica holds it: the primary's columns plus `seq` (a msgspec
    struct: made once per event read, it costs a fifteenth of a frozen dataclass)."""

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

    def merge_folds(self, cur: Cursor) -> None:
        """After several folds wrote their shares of the partitions into the shadows, make
        their rows the ones a single fold writes. Nothing to do for a read model whose
        every row belongs to one partition (an item, a store's day); `stream_heads` has
        streams whose events lie in two (a transfer's stores, a store and no store)."""


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


def lock_checkpoint(cur: Cursor, projector: str, partition: str) -> int:
    """The projector's checkpoint in `partition`, its row locked until the commit."""
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
        checkpoint = lock_checkpoint(cur, projector.name, partition)
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


# The live path: every projector of one or more partitions in one transaction and one
# events read. Which projectors no rebuild holds (a try: a held one is left to `project`,
# which waits), with their checkpoint rows created if missing; rows in the order of the
# names given.
HOLD = """
WITH held AS MATERIALIZED (
    SELECT name, n FROM unnest(%(names)s::text[]) WITH ORDINALITY AS given(name, n)
    WHERE pg_try_advisory_xact_lock_shared(hashtext(%(prefix)s || name))
), created AS (
    INSERT INTO projector_checkpoints (projector, partition)
    SELECT name, part FROM held CROSS JOIN unnest(%(partitions)s::text[]) AS part
    ORDER BY part, name
    ON CONFLICT DO NOTHING
)
SELECT name FROM held ORDER BY n
"""
# Rows are locked in (partition, projector) order (LockRows sits above the sort): two
# batches, or a batch and a `project`, never hold each other's rows crosswise.
LOCK_CHECKPOINTS = """
SELECT projector, partition, seq FROM projector_checkpoints
WHERE partition = ANY(%s) AND projector = ANY(%s) ORDER BY partition, projector FOR UPDATE
"""
# Up to `limit` events of each partition after its own bound, all in seq order.
SELECT_PARTITIONS_EVENTS = """
SELECT e.* FROM unnest(%s::text[], %s::bigint[]) AS bound(part, after) CROSS JOIN LATERAL (
    SELECT seq, position, stream, version, type, store, sku, data::text, metadata::text,
           occurred_at, recorded_at, partition
    FROM events WHERE partition = bound.part AND seq > bound.after ORDER BY seq LIMIT %s
) AS e ORDER BY e.seq
"""
ADVANCE = """
UPDATE projector_checkpoints AS c
SET seq = u.seq, position = greatest(c.position, u.position), updated_at = now()
FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
    AS u(projector, partition, seq, position)
WHERE c.projector = u.projector AND c.partition = u.partition
"""


@dataclass(frozen=True, slots=True)
class Batch:
    """What one `project_partitions_batch` did."""

    full: tuple[str, ...]  # partitions that had a whole batch of events: more may follow
    applied: dict[str, int]  # projector name: events it applied
    skipped: tuple[tuple[str, str], ...]  # (projector, partition) it could not hold


def _read_partitions(cur: Cursor, after: dict[str, int], limit: int) -> list[ReplicaEvent]:
    cur.execute(SELECT_PARTITIONS_EVENTS, (list(after), list(after.values()), limit))
    return [
        ReplicaEvent(*r[:7], r[7].encode(), r[8].encode(), *r[9:])  # type: ignore[call-arg]
        for r in cur.fetchall()
    ]


def _own(
    events: list[ReplicaEvent], checkpoints: dict[str, int], after: dict[str, int]
) -> list[ReplicaEvent]:
    """The events after a projector's own checkpoints (`after`: where the read began)."""
    if all(checkpoints.get(part) == start for part, start in after.items()):
        return events
    return [e for e in events if e.partition in checkpoints and e.seq > checkpoints[e.partition]]


def _advances(name: str, own: list[ReplicaEvent]) -> list[tuple[str, str, int, int]]:
    """(projector, partition, last seq, highest position) for each partition in `own`."""
    last: dict[str, tuple[int, int]] = {}
    for event in own:  # in seq order: the last one seen per partition is its last
        seen = last.get(event.partition)
        position = event.position if seen is None else max(seen[1], event.position)
        last[event.partition] = (event.seq, position)
    return [(name, part, seq, position) for part, (seq, position) in last.items()]


def project_partitions_batch(
    conn: psycopg.Connection[Any],
    projectors: Sequence[Projector],
    partitions: Sequence[str],
    batch_size: int,
) -> Batch:
    """One transaction for every projector and partition: hold and lock their
    checkpoints, read each partition's events after its lowest one once, give each
    projector those after its own, advance every checkpoint in one statement, commit once."""
    by_name = {p.name: p for p in projectors}
    parts = sorted(set(partitions))
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            HOLD,
            {"names": list(by_name), "prefix": LOCK_PREFIX, "partitions": parts},
        )
        held = [row[0] for row in cur.fetchall()]
        checkpoints: dict[str, dict[str, int]] = {name: {} for name in by_name}
        if held:
            cur.execute(LOCK_CHECKPOINTS, (parts, held))
            for name, part, seq in cur.fetchall():
                checkpoints[name][part] = seq
        # Not held, or a checkpoint row gone under our lock (a reset): `project` does them.
        skipped = tuple(
            (name, part) for name in by_name for part in parts if part not in checkpoints[name]
        )
        after: dict[str, int] = {}
        for own_checkpoints in checkpoints.values():
            for part, seq in own_checkpoints.items():
                after[part] = min(seq, after.get(part, seq))
        if not after:
            return Batch((), {}, skipped)
        events = _read_partitions(cur, after, batch_size)
        applied: dict[str, int] = {}
        advanced: list[tuple[str, str, int, int]] = []
        for name, projector in by_name.items():
            own = _own(events, checkpoints[name], after) if checkpoints[name] else []
            if not own:
                continue
            projector.apply(cur, own)
            applied[name] = len(own)
            advanced += _advances(name, own)
        if advanced:
            cur.execute(ADVANCE, [list(column) for column in zip(*advanced, strict=True)])
    counts: dict[str, int] = {}
    for event in events:
        counts[event.partition] = counts.get(event.partition, 0) + 1
    full = tuple(part for part, count in counts.items() if count >= batch_size)
    return Batch(full, applied, skipped)


def project_partition(
    pool: ConnectionPool,
    projectors: Sequence[Projector],
    partition: str,
    *,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """`catch_up` on a connection of `pool`."""
    with pool.connection() as conn:
        return catch_up(conn, projectors, partition, batch_size=batch_size)


def catch_up(
    conn: psycopg.Connection[Any],
    projectors: Sequence[Projector],
    partition: str,
    *,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """`catch_up_partitions` of one partition."""
    return catch_up_partitions(conn, projectors, [partition], batch_size=batch_size)


def catch_up_partitions(
    conn: psycopg.Connection[Any],
    projectors: Sequence[Projector],
    partitions: Sequence[str],
    *,
    batch_size: int = BATCH_SIZE,
) -> dict[str, int]:
    """Catch every projector up on `partitions`, all of them in each batch's transaction;
    a projector a rebuild holds is caught up afterwards alone, waiting for the rebuild.
    Returns the events each projector applied."""
    applied: dict[str, int] = dict.fromkeys((p.name for p in projectors), 0)
    skipped: set[tuple[str, str]] = set()
    pending: Sequence[str] = partitions
    while pending:
        batch = project_partitions_batch(conn, projectors, pending, batch_size)
        for name, count in batch.applied.items():
            applied[name] += count
        skipped.update(batch.skipped)
        pending = batch.full
    for projector in projectors:
        for part in sorted(part for name, part in skipped if name == projector.name):
            while (count := project_batch(conn, projector, part, batch_size)) > 0:
                applied[projector.name] += count
                if count < batch_size:
                    break
    return applied


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
