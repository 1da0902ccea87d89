"""The live path: every projector of one or more partitions in one transaction and one
events read (see engine.py for what a batch guarantees)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import BATCH_SIZE, LOCK_PREFIX, project_batch
from inventory.readmodels.projection import Cursor, Projector, ReplicaEvent

# The live path: every projector of one or more partitions in one transaction and one
# events read. Which projectors no rebuild holds (a try: a held one is left to `project`,
# which waits) in the order of the names given, and which partitions have events, with
# the held projectors' checkpoint rows created there if missing. A partition without
# events gets no rows: a rebuild makes rows only where it reads events, so a catch-up
# must not leave any elsewhere (the two must agree row for row).
HOLD = """
WITH held AS MATERIALIZED (
    SELECT name, n FROM unnest(%(names)s::text[]) WITH ORDINALITY AS given(name, n)
    WHERE pg_try_advisory_xact_lock_shared(hashtext(%(prefix)s || name))
), present AS MATERIALIZED (
    SELECT part FROM unnest(%(partitions)s::text[]) AS part
    WHERE EXISTS (SELECT FROM events WHERE partition = part)
), created AS (
    INSERT INTO projector_checkpoints (projector, partition)
    SELECT name, part FROM held CROSS JOIN present
    ORDER BY part, name
    ON CONFLICT DO NOTHING
)
SELECT array(SELECT name FROM held ORDER BY n), array(SELECT part FROM present ORDER BY part)
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


def _hold(
    cur: Cursor, names: list[str], parts: list[str]
) -> tuple[dict[str, dict[str, int]], tuple[tuple[str, str], ...]]:
    """Each held projector's locked checkpoints by partition, and the (projector,
    partition) pairs it could not hold."""
    cur.execute(HOLD, {"names": names, "prefix": LOCK_PREFIX, "partitions": parts})
    row = cur.fetchone()
    held, parts = (row[0], row[1]) if row is not None else ([], [])
    checkpoints: dict[str, dict[str, int]] = {name: {} for name in names}
    if held and parts:
        cur.execute(LOCK_CHECKPOINTS, (parts, held))
        for name, part, seq in cur.fetchall():
            checkpoints[name][part] = seq
    # Not held, or a checkpoint row gone under our lock (a reset): `project` does them.
    # A partition with no events has nothing to do and is in neither.
    skipped = tuple(
        (name, part) for name in names for part in parts if part not in checkpoints[name]
    )
    return checkpoints, skipped


def _lowest(checkpoints: dict[str, dict[str, int]]) -> dict[str, int]:
    """Each partition's lowest checkpoint over the projectors: where its read begins."""
    after: dict[str, int] = {}
    for own_checkpoints in checkpoints.values():
        for part, seq in own_checkpoints.items():
            after[part] = min(seq, after.get(part, seq))
    return after


def _apply_all(
    cur: Cursor,
    by_name: dict[str, Projector],
    checkpoints: dict[str, dict[str, int]],
    after: dict[str, int],
    events: list[ReplicaEvent],
) -> dict[str, int]:
    """Give each projector the events after its own checkpoints; advance them all in one
    statement. Returns the events each applied."""
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
    return applied


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
        checkpoints, skipped = _hold(cur, list(by_name), parts)
        after = _lowest(checkpoints)
        if not after:
            return Batch((), {}, skipped)
        events = _read_partitions(cur, after, batch_size)
        applied = _apply_all(cur, by_name, checkpoints, after, events)
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
