"""The alerts as people read them: each open alert with its product, its item's level now,
and its acknowledgement (api.md, Queries: `/v1/alerts`).

Tables: `alerts` (readmodels/alerts.py writes it), `products`, `stock_levels`, and the
events copy, where each acknowledgement is an `alert.acknowledged` event
(service/acknowledgements.py, index in projections/0060): it names the alert by its
store, SKU, kind and the position of the event that opened it, which survive a rebuild of
`alerts` (whose ids do not). The first acknowledgement of an alert is the one shown.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from inventory.readmodels.rows import Conn, fetch

AlertState = Literal["open", "acknowledged", "all"]

SELECT = """
SELECT a.id, a.kind, a.store, a.sku, p.name, p.unit, coalesce(p.decimals, 0),
       l.available, l.reorder_min, a.opened_at, k.occurred_at, k.data ->> 'acknowledged_by',
       k.data ->> 'note', o.position, a.opened_seq, a.details, a.closed_seq IS NOT NULL
FROM alerts AS a
JOIN events AS o ON o.seq = a.opened_seq
LEFT JOIN products AS p ON p.sku = a.sku
LEFT JOIN stock_levels AS l ON l.store = a.store AND l.sku = a.sku
LEFT JOIN LATERAL (
    SELECT ack.occurred_at, ack.data FROM events AS ack
    WHERE ack.type = 'alert.acknowledged' AND ack.store = a.store AND ack.sku = a.sku
      AND ack.data ->> 'kind' = a.kind
      AND (ack.data ->> 'opened_position')::bigint = o.position
    ORDER BY ack.position LIMIT 1
) AS k ON true
"""
PAGE = (
    SELECT
    + """
WHERE a.closed_seq IS NULL AND a.id > %(after)s
  AND (%(stores)s::text[] IS NULL OR a.store = ANY(%(stores)s))
  AND (%(kind)s::text IS NULL OR a.kind = %(kind)s)
  AND (%(state)s = 'all' OR (%(state)s = 'acknowledged') = (k.data IS NOT NULL))
ORDER BY a.id LIMIT %(limit)s
"""
)
ONE = SELECT + "WHERE a.id = %s"


class AlertRow(msgspec.Struct, frozen=True, kw_only=True):
    """One alert with what a person needs to act on it."""

    id: int
    kind: str
    store: str
    sku: str
    name: str | None
    unit: str | None
    decimals: int
    available: Decimal | None
    reorder_min: Decimal | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    note: str | None
    opened_position: int
    opened_seq: int
    details: dict[str, Any]
    closed: bool


def _row(r: tuple[Any, ...]) -> AlertRow:
    names = AlertRow.__struct_fields__
    return AlertRow(**dict(zip(names, r, strict=True)))


async def alerts(
    conn: Conn,
    *,
    after: int,
    stores: list[str] | None,
    kind: str | None,
    state: AlertState,
    limit: int,
) -> list[AlertRow]:
    """Open alerts after id `after` of `stores` (None: every one), `kind` (None: any) and
    `state` (`open`: not acknowledged yet, `acknowledged`, or `all`)."""
    params = {"after": after, "stores": stores, "kind": kind, "state": state, "limit": limit}
    return [_row(r) for r in await fetch(conn, PAGE, params)]


async def one_alert(conn: Conn, alert_id: int) -> AlertRow | None:
    """The alert `alert_id` (open or closed), or None."""
    rows = await fetch(conn, ONE, (alert_id,))
    return _row(rows[0]) if rows else None
