"""What webhooks deliver, read on the replica: events in `seq` order and the alerts they
opened, only as far as the stock projector has gone (so an event's alerts exist when the
event goes out).

Tables: the events copy (projections/0002_events.sql), `projector_checkpoints`
(0003_checkpoints.sql) and `alerts` (0007_stock_ledger.sql; the index by opened seq is
0065_alerts_opened_seq.sql). Rows come back as tuples in EVENT_COLUMNS / ALERT_COLUMNS
order, the same fields `GET /v1/events` and `GET /v1/alerts` show.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.readmodels.rows import Conn, Row, fetch
from inventory.readmodels.stock_levels.projector import StockLevels

EVENT_COLUMNS = (
    "seq, position, stream, version, type, store, sku, occurred_at, recorded_at, data, metadata"
)
ALERT_KINDS = ["low_stock", "negative_stock"]  # what goes out as `alert.opened`

# The cursor is one seq across the subscription's stores, so it may pass an event only
# once every store's events before it are projected: the bound is the first seq, over the
# stores, that its store's stock checkpoint does not cover yet.
EVERY_PARTITION = """
WITH RECURSIVE walk AS (
    (SELECT partition FROM events ORDER BY partition LIMIT 1)
    UNION ALL
    SELECT (SELECT e.partition FROM events AS e WHERE e.partition > walk.partition
            ORDER BY e.partition LIMIT 1)
    FROM walk WHERE walk.partition IS NOT NULL
), parts AS (SELECT partition FROM walk WHERE partition IS NOT NULL)
"""
LISTED_PARTITIONS = "WITH parts AS (SELECT unnest(%(parts)s::text[]) AS partition)"
BOUND = """, bound AS (
    SELECT coalesce(min(n.seq), 9223372036854775807) AS seq FROM parts AS p
    LEFT JOIN projector_checkpoints AS c
        ON c.projector = %(projector)s AND c.partition = p.partition
    CROSS JOIN LATERAL (
        SELECT seq FROM events WHERE partition = p.partition AND seq > coalesce(c.seq, 0)
        ORDER BY seq LIMIT 1
    ) AS n
)
"""
EVERY_EVENT = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE seq >= %(after)s AND seq < (SELECT seq FROM bound)
ORDER BY seq LIMIT %(limit)s
"""
# One (partition, seq) index range per store, merged (as readmodels/history.py does).
LISTED_EVENTS = f"""
SELECT e.* FROM parts AS p CROSS JOIN LATERAL (
    SELECT {EVENT_COLUMNS} FROM events
    WHERE partition = p.partition AND seq >= %(after)s AND seq < (SELECT seq FROM bound)
    ORDER BY seq LIMIT %(limit)s
) AS e ORDER BY e.seq LIMIT %(limit)s
"""
ALERTS = """
SELECT opened_seq, id, store, sku, kind, opened_at, details FROM alerts
WHERE opened_seq = ANY(%s) AND kind = ANY(%s)
ORDER BY opened_seq, store, sku, kind
"""


def events_from(
    conn: psycopg.Connection[Any], parts: list[str] | None, after: int, limit: int
) -> list[Row]:
    """Up to `limit` events of the partitions (None: all) from seq `after` on, ascending,
    and short of the first event some store's stock checkpoint does not cover."""
    params = {"after": after, "limit": limit, "parts": parts, "projector": StockLevels.name}
    if parts is None:
        query = EVERY_PARTITION + BOUND + EVERY_EVENT
    else:
        query = LISTED_PARTITIONS + BOUND + LISTED_EVENTS
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def alerts_opened(conn: psycopg.Connection[Any], seqs: list[int]) -> list[Row]:
    """The low- and negative-stock alerts the events at `seqs` opened, by seq then item."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(ALERTS, (seqs, ALERT_KINDS))
        return cur.fetchall()


async def last_seq(conn: Conn) -> int:
    """The newest seq in the events copy (0 when empty): where a new subscription starts."""
    rows = await fetch(conn, "SELECT coalesce(max(seq), 0) FROM events")
    return int(rows[0][0])
