"""What the health checks ask the servers: a ping, the replica's subscription, the
primary's replication slot."""

from __future__ import annotations

from typing import Any

import psycopg

from inventory.runtime.migrations import SUBSCRIPTION

Conn = psycopg.AsyncConnection[Any]

SUBSCRIPTION_STATUS = """
SELECT s.subenabled, w.pid IS NOT NULL, w.last_msg_receipt_time
FROM pg_subscription s
LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL
WHERE s.subname = %s
"""
SLOT_STATUS = """
SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
FROM pg_replication_slots WHERE slot_name = %s
"""


async def ping(conn: Conn) -> None:
    """One round trip: the server answers."""
    await conn.execute("SELECT 1")


async def subscription_status(conn: Conn) -> tuple[Any, ...] | None:
    """On the replica: (enabled, apply worker running, last message time) of the
    subscription, or None when it does not exist."""
    cursor = await conn.execute(SUBSCRIPTION_STATUS, (SUBSCRIPTION,))
    return await cursor.fetchone()


async def slot_status(conn: Conn) -> tuple[Any, ...] | None:
    """On the primary: (active, bytes of WAL the replica has not confirmed) of the
    replica's slot, or None when there is none."""
    cursor = await conn.execute(SLOT_STATUS, (SUBSCRIPTION,))
    return await cursor.fetchone()
