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

# A store's events up to its stock checkpoint; every store's when `parts` is NULL.
EVENTS = f"""
SELECT {EVENT_COLUMNS} FROM (
    SELECT e.* FROM projector_checkpoints AS c
    CROSS JOIN LATERAL (
        SELECT {EVENT_COLUMNS} FROM events
        WHERE partition = c.partition AND seq >= %(after)s AND seq <= c.seq
        ORDER BY seq LIMIT %(limit)s
    ) AS e
    WHERE c.projector = %(projector)s
      AND (%(parts)s::text[] IS NULL OR c.partition = ANY(%(parts)s))
) AS merged ORDER BY seq LIMIT %(limit)s
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
    none past its store's stock checkpoint."""
    params = {"after": after, "limit": limit, "parts": parts, "projector": StockLevels.name}
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(EVENTS, params)
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
