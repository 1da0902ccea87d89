"""The live feed's reads of the replica: events the projectors have applied, with the
levels and alerts they moved, and the publisher's cursors.

Tables: the events copy (projections/0002_events.sql), `projector_checkpoints` (the
bounds: read only), `stock_ledger` and `alerts` (each event's level and alerts), and
`feed_published` (projections/0020_feed_published.sql: each store's publishing cursor and
lock). The worker publishes with the sync functions, inside the transaction that holds
the cursors while Redis accepts the messages; the API's feed sessions read with the
async ones. Events come back as `EventRow`s, levels and alerts as tuples (feed/messages.py
encodes each once into its message).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from inventory.readmodels.registry import projector_names

Cursor = psycopg.Cursor[Any]
AsyncCursor = psycopg.AsyncCursor[Any]
Row = tuple[Any, ...]
Levels = dict[int, Row]  # seq: on_hand, reserved and available after the event

# The events of one partition after a seq, up to a bound, each with its predecessor's seq.
EVENT_COLUMNS = """
e.seq, e.position, e.stream, e.type, e.store, e.sku, e.occurred_at, e.data::text,
e.partition,
coalesce((SELECT max(p.seq) FROM events AS p
          WHERE p.partition = e.partition AND p.seq < e.seq), 0)
"""

# The highest seq every projector has applied, per partition: the feed never shows an
# event before the read models hold it.
PROJECTED_BOUNDS = """
SELECT c.partition, min(c.seq) AS bound
FROM projector_checkpoints AS c
WHERE c.projector = ANY(%(projectors)s) AND c.partition <> ''
  AND (%(every)s OR c.partition = ANY(%(stores)s))
GROUP BY c.partition
HAVING count(*) = cardinality(%(projectors)s::text[])
"""

# The level source: the stock ledger's row for each event. One place to change if the
# read side moves it.
LEVELS = """
SELECT seq, on_hand_after, reserved_after, available_after
FROM stock_ledger WHERE seq = ANY(%s)
"""
ALERTS = """
SELECT id, store, sku, kind, opened_seq, opened_at, closed_seq, closed_at, details::text
FROM alerts WHERE opened_seq = ANY(%(seqs)s) OR closed_seq = ANY(%(seqs)s)
"""

# Each partition's events in (published, bound], its latest MAX_PUBLISH, all in seq order.
PENDING = f"""
SELECT latest.* FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) AS r(part, published, bound)
CROSS JOIN LATERAL (
    SELECT {EVENT_COLUMNS} FROM events AS e
    WHERE e.partition = r.part AND e.seq > r.published AND e.seq <= r.bound
    ORDER BY e.seq DESC LIMIT %s
) AS latest ORDER BY 1
"""
# The partitions' cursors, locked in partition order, with what every projector has
# applied in each (NULL while some projector has no checkpoint there).
LOCK_CURSORS = f"""
SELECT f.partition, f.seq, b.bound FROM feed_published AS f
LEFT JOIN ({PROJECTED_BOUNDS}) AS b USING (partition)
WHERE f.partition = ANY(%(stores)s) ORDER BY f.partition FOR UPDATE OF f
"""
# The stores whose projected events are not all published (a wake-up lost, Redis down
# when their round ran): what the sweep publishes, found in one statement.
UNPUBLISHED = f"""
SELECT b.partition FROM ({PROJECTED_BOUNDS}) AS b
LEFT JOIN feed_published AS f USING (partition)
WHERE b.bound > coalesce(f.seq, 0) ORDER BY 1
"""
CREATE_CURSORS = """
INSERT INTO feed_published (partition) SELECT unnest(%s::text[]) ORDER BY 1
ON CONFLICT DO NOTHING
"""
ADVANCE_CURSORS = """
UPDATE feed_published AS f SET seq = u.seq, updated_at = now()
FROM unnest(%s::text[], %s::bigint[]) AS u(partition, seq) WHERE f.partition = u.partition
"""


CATCH_UP = f"""
WITH cursors AS (
    SELECT * FROM unnest(%(cursor_stores)s::text[], %(cursor_seqs)s::bigint[])
        AS c(partition, after)
), bounds AS ({PROJECTED_BOUNDS})
SELECT {EVENT_COLUMNS}
FROM bounds AS b
LEFT JOIN cursors AS c USING (partition)
CROSS JOIN LATERAL (
    SELECT * FROM events AS x
    WHERE x.partition = b.partition AND x.seq > coalesce(c.after, %(after)s)
      AND x.seq <= b.bound
    ORDER BY x.seq LIMIT %(limit)s
) AS e
ORDER BY e.seq LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of the events copy, as the feed selects it."""

    seq: int
    position: int
    stream: str
    type: str
    store: str
    sku: str | None
    occurred_at: datetime
    data: str
    partition: str
    prev_seq: int


def bound_params(stores: list[str] | None) -> dict[str, Any]:
    """PROJECTED_BOUNDS's parameters: of `stores`, or of every store when None."""
    return {"projectors": projector_names(), "every": stores is None, "stores": stores or []}


def lock_cursors(cur: Cursor, partitions: list[str]) -> list[tuple[str, int, int | None]]:
    """Each partition's (partition, published, bound), its cursor row locked (created
    first if missing)."""
    arguments = bound_params(partitions)
    cur.execute(LOCK_CURSORS, arguments)
    rows: list[tuple[str, int, int | None]] = cur.fetchall()
    if len(rows) < len(partitions):
        cur.execute(CREATE_CURSORS, (partitions,))
        cur.execute(LOCK_CURSORS, arguments)
        rows = cur.fetchall()
    return rows


def unpublished(cur: Cursor) -> list[str]:
    """The stores with projected events not published yet, in partition order."""
    cur.execute(UNPUBLISHED, bound_params(None))
    return [row[0] for row in cur.fetchall()]


def pending(
    cur: Cursor, parts: list[str], published: list[int], bounds: list[int], limit: int
) -> list[EventRow]:
    """Each partition's events in (published, bound], its latest `limit`, in seq order."""
    cur.execute(PENDING, (parts, published, bounds, limit))
    return [EventRow(*row) for row in cur.fetchall()]


def read_extras(cur: Cursor, seqs: list[int]) -> tuple[Levels, list[Row]]:
    """Levels and alert rows for these events' seqs, from the stock ledger and alerts."""
    cur.execute(LEVELS, (seqs,))
    levels: Levels = {row[0]: row[1:] for row in cur.fetchall()}
    cur.execute(ALERTS, {"seqs": seqs})
    return levels, cur.fetchall()


def advance_cursors(cur: Cursor, parts: list[str], bounds: list[int]) -> None:
    """Move the (locked) cursors of `parts` to `bounds`."""
    cur.execute(ADVANCE_CURSORS, (parts, bounds))


async def projected_bounds(
    conn: psycopg.AsyncConnection[Any], stores: list[str] | None
) -> list[Row]:
    """(store, bound) of each store (of `stores`; None: every one) every projector holds."""
    cursor = await conn.execute(PROJECTED_BOUNDS, bound_params(stores))
    return await cursor.fetchall()


async def catch_up_page(
    cur: AsyncCursor, stores: list[str] | None, cursors: dict[str, int], after: int, limit: int
) -> list[EventRow]:
    """Up to `limit` events the projectors hold past each store's cursor (`after` for a
    store without one), in seq order."""
    params = {
        **bound_params(stores),
        "cursor_stores": list(cursors),
        "cursor_seqs": list(cursors.values()),
        "after": after,
        "limit": limit,
    }
    await cur.execute(CATCH_UP, params)
    return [EventRow(*row) for row in await cur.fetchall()]


async def read_extras_async(cur: AsyncCursor, seqs: list[int]) -> tuple[Levels, list[Row]]:
    """`read_extras` on an async cursor (the API's feed sessions)."""
    await cur.execute(LEVELS, (seqs,))
    levels: Levels = {row[0]: row[1:] for row in await cur.fetchall()}
    await cur.execute(ALERTS, {"seqs": seqs})
    return levels, await cur.fetchall()
