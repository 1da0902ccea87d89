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

PENDING = f"""
SELECT * FROM (
    SELECT {messages.EVENT_COLUMNS} FROM events AS e
    WHERE e.partition = %s AND e.seq > %s AND e.seq <= %s
    ORDER BY e.seq DESC LIMIT %s
) AS latest ORDER BY 1
"""


def _lock_cursor(cur: Cursor, partition: str) -> int:
    cur.execute(
        "INSERT INTO feed_published (partition) VALUES (%s) ON CONFLICT DO NOTHING", (partition,)
    )
    cur.execute("SELECT seq FROM feed_published WHERE partition = %s FOR UPDATE", (partition,))
    row = cur.fetchone()
    assert row is not None
    return int(row[0])


def projected_bound(cur: Cursor, partition: str) -> int:
    """The highest seq every projector has applied in `partition` (0 if some has not started)."""
    cur.execute(
        messages.PROJECTED_BOUNDS,
        {"projectors": messages.projector_names(), "every": False, "stores": [partition]},
    )
    row = cur.fetchone()
    return int(row[1]) if row else 0


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
    """Publish what the projectors committed since the last run; returns the count."""
    if not partition:  # events of no store (products) belong to no store's feed
        return 0
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        published = _lock_cursor(cur, partition)
        bound = projected_bound(cur, partition)
        if bound <= published:
            return 0
        cur.execute(PENDING, (partition, published, bound, MAX_PUBLISH))
        rows = [EventRow(*row) for row in cur.fetchall()]
        levels, alerts = read_extras(cur, [row.seq for row in rows])
        pipeline = client.pipeline(transaction=False)
        name = messages.channel(namespace, partition)
        for bundle in messages.bundles(rows, levels, alerts):
            pipeline.publish(name, messages.encode(bundle))
        # Raises on a Redis failure: the transaction rolls back and the range stays
        # pending for the next wake-up or sweep.
        pipeline.execute()
        cur.execute(
            "UPDATE feed_published SET seq = %s, updated_at = now() WHERE partition = %s",
            (bound, partition),
        )
    return len(rows)
