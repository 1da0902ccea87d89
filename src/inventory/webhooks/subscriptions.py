"""The API's side of the webhook tables on the primary: subscriptions and their delivery
log (migrations/0075_webhooks.sql). Secrets leave only through `create` and `rotate`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.webhooks.outbox import ALL_PARTS

Conn = psycopg.AsyncConnection[Any]
OVERLAP = "24 hours"  # how long a rotated-out secret still signs


@dataclass(frozen=True, slots=True)
class Listed:
    """A subscription as callers see it: no secret."""

    id: str
    url: str
    stores: list[str]
    types: list[str] | None
    description: str | None
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None


@dataclass(frozen=True, slots=True)
class NewSubscription:
    """What `create` stores."""

    id: str
    url: str
    stores: list[str]
    types: list[str] | None
    description: str | None
    secret: str
    created_by: str
    after_seq: int


@dataclass(frozen=True, slots=True)
class LoggedDelivery:
    """One row of a subscription's delivery log."""

    id: int
    webhook_id: str
    seq: int | None
    type: str
    attempts: int
    status: str
    last_status_code: int | None
    next_attempt_at: datetime | None


async def _rows(conn: Conn, query: str, params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params)
    return await cur.fetchall() if cur.description else []


CREATE = """
INSERT INTO webhook_subscriptions
    (id, url, stores, types, description, secret, created_by, after_seq, after_part)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


async def create(conn: Conn, new: NewSubscription) -> None:
    """Store a subscription whose cursor starts after `new.after_seq` (every part of it)."""
    await _rows(
        conn,
        CREATE,
        (
            new.id,
            new.url,
            new.stores,
            new.types,
            new.description,
            new.secret,
            new.created_by,
            new.after_seq,
            ALL_PARTS,
        ),
    )


LISTED = """
SELECT id::text, url, stores, types, description, created_at, disabled_at, disabled_reason
FROM webhook_subscriptions
WHERE deleted_at IS NULL AND (%(scope)s::text[] IS NULL
    OR (NOT '*' = ANY(stores) AND stores <@ %(scope)s::text[]))
"""


PAGE = (
    LISTED
    + """ AND (%(stores)s::text[] IS NULL OR stores && %(stores)s::text[] OR '*' = ANY(stores))
    AND (%(after)s::uuid IS NULL OR id > %(after)s::uuid) ORDER BY id LIMIT %(limit)s"""
)


async def listed(
    conn: Conn, scope: list[str] | None, stores: list[str] | None, after: str | None, limit: int
) -> list[Listed]:
    """Live subscriptions whose stores all lie in `scope` (None: every one) and that
    deliver events of any of `stores` (None: whichever), by id after `after`."""
    params = {"scope": scope, "stores": stores, "after": after, "limit": limit}
    return [Listed(*row) for row in await _rows(conn, PAGE, params)]


async def find(conn: Conn, subscription_id: str, scope: list[str] | None) -> Listed | None:
    """The live subscription if the scope covers all its stores, else None."""
    rows = await _rows(
        conn, LISTED + " AND id = %(id)s::uuid", {"scope": scope, "id": subscription_id}
    )
    return Listed(*rows[0]) if rows else None


async def delete(conn: Conn, subscription_id: str) -> None:
    """Mark the subscription deleted; its log stays for the record, nothing more is sent."""
    await _rows(
        conn,
        "UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL",
        (subscription_id,),
    )


ROTATE = f"""
UPDATE webhook_subscriptions
SET previous_secret = secret, previous_until = now() + interval '{OVERLAP}', secret = %s
WHERE id = %s AND deleted_at IS NULL
"""


async def rotate(conn: Conn, subscription_id: str, secret: str) -> None:
    """Make `secret` the signing secret; the old one keeps signing for OVERLAP."""
    await _rows(conn, ROTATE, (secret, subscription_id))


QUEUE_TEST = """
INSERT INTO webhook_deliveries (subscription_id, webhook_id, seq, part, type, body)
VALUES (%s, %s, NULL, 0, 'webhook.test', %s)
"""


async def queue_test(conn: Conn, subscription_id: str, webhook_id: str, body: str) -> None:
    """Log a test delivery as due now; the worker sends it in its next round."""
    await _rows(conn, QUEUE_TEST, (subscription_id, webhook_id, body))


DELIVERIES = """
SELECT id, webhook_id, seq, type, attempts, status, last_status_code,
       CASE WHEN status = 'pending' THEN next_attempt_at END
FROM webhook_deliveries
WHERE subscription_id = %s AND (%s::bigint IS NULL OR id < %s::bigint)
ORDER BY id DESC LIMIT %s
"""


async def deliveries(
    conn: Conn, subscription_id: str, before: int | None, limit: int
) -> list[LoggedDelivery]:
    """The subscription's delivery log, newest first, older than id `before` (if given)."""
    rows = await _rows(conn, DELIVERIES, (subscription_id, before, before, limit))
    return [LoggedDelivery(*row) for row in rows]
