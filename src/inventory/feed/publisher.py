"""Publishing live messages to Redis once the read models have committed them.

Run after every projector has caught up on a partition: it publishes the partition's
events in (last published, min checkpoint over all projectors], so Redis never carries an
event the read models do not hold. The `feed_published` row is the partition's lock and
cursor: it advances in the same replica transaction that held the lock while Redis
accepted the messages, so a crash republishes at most one range (at-least-once; every
receiver drops seqs it has already sent) and a restart neither loses nor floods.
"""

from __future__ import annotations

from typing import Any

import psycopg
import redis
from psycopg.rows import tuple_row

from inventory.feed import messages
from inventory.feed.messages import EventRow

# A partition further behind than this (a long Redis outage, the first run on an old
# database) publishes only its latest events: receivers see the gap in `prev_seq` and
# fill it from the replica, which is cheaper than a flood through Redis.
MAX_PUBLISH = 1000

Cursor = psycopg.Cursor[Any]

# Each partition's events in (published, bound], its latest MAX_PUBLISH, all in seq order.
PENDING = f"""
SELECT latest.* FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS r(part, published, bound)
CROSS JOIN LATERAL (
    SELECT {messages.EVENT_COLUMNS} FROM events AS e
    WHERE e.partition = r.part AND e.seq > r.published AND e.seq <= r.bound
    ORDER BY e.seq DESC LIMIT %s
) AS latest ORDER BY 1
"""
# The partitions' cursors, locked in partition order, with what every projector has
# applied in each (NULL while some projector has no checkpoint there).
LOCK_CURSORS = f"""
SELECT f.partition, f.seq, b.bound FROM feed_published AS f
LEFT JOIN ({messages.PROJECTED_BOUNDS}) AS b USING (partition)
WHERE f.partition = ANY(%(stores)s) ORDER BY f.partition FOR UPDATE OF f
"""
CREATE_CURSORS = """
INSERT INTO feed_published (partition) SELECT unnest(%s::text[]) ORDER BY 1
ON CONFLICT DO NOTHING
"""
ADVANCE_CURSORS = """
UPDATE feed_published AS f SET seq = u.seq, updated_at = now()
FROM unnest(%s::text[], %s::bigint[]) AS u(partition, seq) WHERE f.partition = u.partition
"""


def _lock_cursors(cur: Cursor, partitions: list[str]) -> list[tuple[str, int, int | None]]:
    """Each partition's (partition, published, bound), its cursor row locked (created
    first if missing)."""
    arguments = {"projectors": messages.projector_names(), "every": False, "stores": partitions}
    cur.execute(LOCK_CURSORS, arguments)
    rows: list[tuple[str, int, int | None]] = cur.fetchall()
    if len(rows) < len(partitions):
        cur.execute(CREATE_CURSORS, (partitions,))
        cur.execute(LOCK_CURSORS, arguments)
        rows = cur.fetchall()
    return rows


def read_extras(
    cur: Cursor, seqs: list[int]
) -> tuple[dict[int, tuple[Any, ...]], dict[int, list[dict[str, Any]]]]:
    """Levels and alert messages for these events' seqs, from the stock ledger and alerts."""
    cur.execute(messages.LEVELS, (seqs,))
    levels: dict[int, tuple[Any, ...]] = {row[0]: row[1:] for row in cur.fetchall()}
    cur.execute(messages.ALERTS, {"seqs": seqs})
    return levels, messages.alert_messages(cur.fetchall())


def publish_partition(
    conn: psycopg.Connection[Any], client: redis.Redis, namespace: str, partition: str
) -> int:
    """Publish what the projectors committed in one partition since the last run."""
    return publish_partitions(conn, client, namespace, [partition])


def publish_partitions(
    conn: psycopg.Connection[Any], client: redis.Redis, namespace: str, partitions: list[str]
) -> int:
    """Publish what the projectors committed since the last run, in one transaction for
    all the partitions (each to its own channel); returns the count."""
    # Events of no store (products) belong to no store's feed.
    stores = sorted({partition for partition in partitions if partition})
    if not stores:
        return 0
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        ranges = [
            (part, published, bound)
            for part, published, bound in _lock_cursors(cur, stores)
            if bound is not None and bound > published
        ]
        if not ranges:
            return 0
        parts, published, bounds = (list(column) for column in zip(*ranges, strict=True))
        cur.execute(PENDING, (parts, published, bounds, MAX_PUBLISH))
        rows = [EventRow(*row) for row in cur.fetchall()]
        levels, alerts = read_extras(cur, [row.seq for row in rows])
        pipeline = client.pipeline(transaction=False)
        for row, bundle in zip(rows, messages.bundles(rows, levels, alerts), strict=True):
            pipeline.publish(messages.channel(namespace, row.partition), messages.encode(bundle))
        # Raises on a Redis failure: the transaction rolls back and the ranges stay
        # pending for the next wake-up or sweep.
        pipeline.execute()
        cur.execute(ADVANCE_CURSORS, (parts, bounds))
    return len(rows)
