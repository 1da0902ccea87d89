"""The worker's side of the webhook tables on the primary: the round's lock, the cursor,
and the delivery log (migrations/0075_webhooks.sql)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.webhooks.messages import Message

Conn = psycopg.Connection[Any]
LOCK_CLASS = 7501  # the advisory-lock namespace of webhook rounds
ALL_PARTS = 2**31 - 1  # a cursor's part past every alert of its seq


@dataclass(frozen=True, slots=True)
class Subscription:
    """A live subscription as the worker needs it: filters, cursor and signing secrets."""

    id: str
    url: str
    stores: list[str]
    types: list[str] | None
    after_seq: int
    after_part: int
    secrets: list[str]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message of the log: what to send and how it has gone so far."""

    id: int
    webhook_id: str
    seq: int | None
    part: int
    type: str
    body: str
    attempts: int
    first_failed_at: datetime | None
    next_attempt_at: datetime


def _rows(conn: Conn, query: str, params: Any) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


def try_lock(conn: Conn, subscription_id: str) -> bool:
    """Take the subscription's round lock for the connection's open transaction, if free:
    one round per subscription at a time, released when the transaction (or the process
    holding it: kill -9 included) ends."""
    rows = _rows(
        conn,
        "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))",
        (LOCK_CLASS, subscription_id),
    )
    return bool(rows[0][0])


LOAD = """
SELECT id::text, url, stores, types, after_seq, after_part,
       array_remove(ARRAY[secret, CASE WHEN previous_until > now() THEN previous_secret END],
                    NULL)
FROM webhook_subscriptions
WHERE id = %s AND deleted_at IS NULL AND disabled_at IS NULL
"""


def load(conn: Conn, subscription_id: str) -> Subscription | None:
    """The live subscription (None once deleted or disabled), with its signing secrets."""
    rows = _rows(conn, LOAD, (subscription_id,))
    return Subscription(*rows[0]) if rows else None


DELIVERY = """
SELECT id, webhook_id, seq, part, type, body, attempts, first_failed_at, next_attempt_at
FROM webhook_deliveries
"""
HEAD = (
    DELIVERY
    + """
WHERE subscription_id = %s AND status = 'pending' AND seq IS NOT NULL
ORDER BY seq, part LIMIT 1
"""
)
TESTS = (
    DELIVERY
    + """
WHERE subscription_id = %s AND status = 'pending' AND seq IS NULL AND next_attempt_at <= now()
ORDER BY id LIMIT 10
"""
)


def head(conn: Conn, subscription_id: str) -> Delivery | None:
    """The subscription's pending delivery of its event stream (at most one: the next is
    recorded only once this one is delivered)."""
    rows = _rows(conn, HEAD, (subscription_id,))
    return Delivery(*rows[0]) if rows else None


def due_tests(conn: Conn, subscription_id: str) -> list[Delivery]:
    """Test deliveries due now; they sit beside the stream, not in its order."""
    return [Delivery(*row) for row in _rows(conn, TESTS, (subscription_id,))]


# A message's first attempt is recorded after it, with its outcome, in one transaction:
# a worker killed before this commit leaves nothing, and the next round builds the same
# message (same id, same place) from the cursor again.
FIRST = """
INSERT INTO webhook_deliveries (subscription_id, webhook_id, seq, part, type, body, attempts,
    status, last_status_code, last_error, first_failed_at, next_attempt_at, delivered_at)
VALUES (%(subscription)s, %(webhook_id)s, %(seq)s, %(part)s, %(type)s, %(body)s, 1,
    %(status)s, %(code)s, %(error)s, CASE WHEN %(status)s = 'pending' THEN now() END,
    coalesce(%(next)s, now()), CASE WHEN %(status)s = 'delivered' THEN now() END)
ON CONFLICT (subscription_id, webhook_id) DO UPDATE SET
    attempts = webhook_deliveries.attempts + 1, status = excluded.status,
    last_status_code = excluded.last_status_code, last_error = excluded.last_error,
    first_failed_at = coalesce(webhook_deliveries.first_failed_at, excluded.first_failed_at),
    next_attempt_at = excluded.next_attempt_at, delivered_at = excluded.delivered_at
"""


def relaxed(conn: Conn) -> None:
    """Let this transaction's commit skip the WAL flush: a log entry or cursor step lost
    to a primary crash only repeats a message under its own id (at least once holds)."""
    _rows(conn, "SET LOCAL synchronous_commit = off", ())


def first_attempt(
    conn: Conn,
    subscription_id: str,
    message: Message,
    outcome: tuple[int | None, str | None],
    retry_at: datetime | None,
) -> None:
    """Record a message's first attempt: delivered (no `retry_at`; the cursor moves past
    it) or pending until `retry_at`."""
    code, error = outcome
    status = "pending" if retry_at is not None else "delivered"
    _rows(
        conn,
        FIRST,
        {
            "subscription": subscription_id,
            "webhook_id": message.webhook_id,
            "seq": message.seq,
            "part": message.part,
            "type": message.type,
            "body": message.body,
            "status": status,
            "code": code,
            "error": error,
            "next": retry_at,
        },
    )
    if retry_at is None:
        advance(conn, subscription_id, message.seq, message.part)


DELIVERED = """
UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,
    last_status_code = %s, last_error = NULL, delivered_at = now()
WHERE id = %s
"""
ADVANCE = """
UPDATE webhook_subscriptions SET after_seq = %(seq)s, after_part = %(part)s
WHERE id = %(id)s AND (after_seq, after_part) < (%(seq)s, %(part)s)
"""


def delivered(conn: Conn, delivery: Delivery, subscription_id: str, status: int) -> None:
    """Mark the delivery done and, for a stream message, move the cursor past it."""
    _rows(conn, DELIVERED, (status, delivery.id))
    if delivery.seq is not None:
        advance(conn, subscription_id, delivery.seq, delivery.part)


def advance(conn: Conn, subscription_id: str, seq: int, part: int) -> None:
    """Move the cursor forward to (seq, part), never back."""
    _rows(conn, ADVANCE, {"seq": seq, "part": part, "id": subscription_id})


RETRY = """
UPDATE webhook_deliveries SET attempts = attempts + 1, last_status_code = %s,
    last_error = %s, first_failed_at = coalesce(first_failed_at, now()),
    next_attempt_at = %s
WHERE id = %s
"""


def retry_at(
    conn: Conn, delivery: Delivery, status: int | None, error: str | None, when: datetime
) -> None:
    """Record a failed attempt and when the next one is due."""
    _rows(conn, RETRY, (status, error, when, delivery.id))


GIVE_UP = """
UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1,
    last_status_code = %s, last_error = %s, first_failed_at = coalesce(first_failed_at, now())
WHERE id = %s
"""
DISABLE = """
UPDATE webhook_subscriptions SET disabled_at = now(), disabled_reason = %s
WHERE id = %s AND disabled_at IS NULL
"""


def give_up(
    conn: Conn, delivery: Delivery, status: int | None, error: str | None, reason: str | None
) -> None:
    """Record the last failed attempt of a message given up on; with a `reason`, disable
    the subscription (a stream message: later ones must not overtake it)."""
    _rows(conn, GIVE_UP, (status, error, delivery.id))
    if reason is not None:
        owner = "SELECT subscription_id::text FROM webhook_deliveries WHERE id = %s"
        rows = _rows(conn, owner, (delivery.id,))
        _rows(conn, DISABLE, (reason, rows[0][0]))


SWEEP = """
SELECT s.id::text FROM webhook_subscriptions AS s
WHERE s.deleted_at IS NULL AND s.disabled_at IS NULL AND NOT EXISTS (
    SELECT 1 FROM webhook_deliveries AS d
    WHERE d.subscription_id = s.id AND d.status = 'pending' AND d.next_attempt_at > now()
      AND d.seq IS NOT NULL
)
ORDER BY s.created_at
"""


def sweepable(conn: Conn) -> list[str]:
    """Live subscriptions not waiting out a back-off: the sweep wakes each of them."""
    return [row[0] for row in _rows(conn, SWEEP, ())]


MATCHING = """
SELECT id::text FROM webhook_subscriptions
WHERE deleted_at IS NULL AND disabled_at IS NULL
  AND (stores && %s::text[] OR '*' = ANY(stores))
"""


def covering(conn: Conn, partitions: list[str]) -> list[str]:
    """Live subscriptions that may want events of these partitions (store ids)."""
    return [row[0] for row in _rows(conn, MATCHING, (partitions,))]
