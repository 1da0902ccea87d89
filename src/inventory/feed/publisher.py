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
from inventory.readmodels import feed_publication

# A partition further behind than this (a long Redis outage, the first run on an old
# database) publishes only its latest events: receivers see the gap in `prev_seq` and
# fill it from the replica, which is cheaper than a flood through Redis.
MAX_PUBLISH = 1000
SWEEP_STORES = 100  # stores the sweep publishes per transaction


def publish_unpublished(conn: psycopg.Connection[Any], client: redis.Redis, namespace: str) -> int:
    """Publish every store whose projected events are not all published yet, found in one
    statement, SWEEP_STORES stores per transaction; returns the count. The sweep's part:
    a store per transaction cost a replica round trip per store every sweep, however few
    were behind."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        stores = feed_publication.unpublished(cur)
    return sum(
        publish_partitions(conn, client, namespace, stores[at : at + SWEEP_STORES])
        for at in range(0, len(stores), SWEEP_STORES)
    )


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
            for part, published, bound in feed_publication.lock_cursors(cur, stores)
            if bound is not None and bound > published
        ]
        if not ranges:
            return 0
        parts, published, bounds = (list(column) for column in zip(*ranges, strict=True))
        rows = feed_publication.pending(cur, parts, published, bounds, MAX_PUBLISH)
        levels, alert_rows = feed_publication.read_extras(cur, [row.seq for row in rows])
        alerts = messages.alert_messages(alert_rows)
        pipeline = client.pipeline(transaction=False)
        for row, bundle in zip(rows, messages.bundles(rows, levels, alerts), strict=True):
            pipeline.publish(messages.channel(namespace, row.partition), messages.encode(bundle))
        # Raises on a Redis failure: the transaction rolls back and the ranges stay
        # pending for the next wake-up or sweep.
        pipeline.execute()
        feed_publication.advance_cursors(cur, parts, bounds)
    return len(rows)
