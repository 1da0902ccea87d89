"""Reservations past their expiry, read from the stream states the primary keeps."""

from __future__ import annotations

from typing import Any

import psycopg

# Indexed by migrations/0008_reservation_expiry.sql.
OVERDUE = """
SELECT state->>'store_id', state->>'reservation_id' FROM streams
WHERE stream LIKE 'reservation-%' AND state->>'status' = 'active'
  AND (state->>'expires_at')::timestamptz <= now()
ORDER BY (state->>'expires_at')::timestamptz
LIMIT 1000
"""


def overdue_reservations(primary_url: str) -> list[tuple[str, str]]:
    """(store id, reservation id) of up to 1,000 active reservations past `expires_at`,
    the longest overdue first."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        rows: list[tuple[Any, ...]] = conn.execute(OVERDUE).fetchall()
    return [(store_id, reservation_id) for store_id, reservation_id in rows]
