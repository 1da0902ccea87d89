"""A delivery round for one subscription: due test messages, then its stream in (seq, part)
order until a message fails, nothing is left, or the round's time is up.

The round holds the subscription's advisory lock in a transaction on one connection for
its whole length, and records each attempt in a transaction of its own on another: the
lock keeps two workers from sending one subscription's messages out of order, and every
delivered message and cursor step is committed at once, so a worker killed mid-round
repeats at most the message it was sending, under the same `webhook-id`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from psycopg_pool import ConnectionPool

from inventory.readmodels import webhook_source
from inventory.webhooks import messages, outbox, sender
from inventory.webhooks.outbox import Conn, Delivery, Subscription
from inventory.webhooks.signing import signature_header
from inventory.webhooks.targets import IpNetwork, TargetRefused, parse, pin

log = structlog.get_logger(__name__)
T = TypeVar("T")

GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY_SECONDS = 5.0
LONGEST_RETRY_SECONDS = 6 * 3600.0
ROUND_SECONDS = 30.0  # then the thread hands the subscription to a fresh message
BATCH = 100


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: doubling from 5 s up
    to 6 h, each drawn between half and all of that (jitter spreads a burst's retries)."""
    ceiling = min(FIRST_RETRY_SECONDS * 2.0 ** min(max(attempts - 1, 0), 30), LONGEST_RETRY_SECONDS)
    return float(ceiling) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class Deliverer:
    """What rounds need: both pools, the allowed networks and the HTTP timeouts."""

    primary: ConnectionPool  # its own: a round holds two connections
    replica: ConnectionPool
    allowed: tuple[IpNetwork, ...]
    timeouts: sender.Timeouts = field(default_factory=sender.Timeouts)

    def run(self, subscription_id: str) -> datetime | None:
        """One round; returns when the next round should start: when the next attempt
        falls due after a failure here, now when the round ran out of time, None when
        nothing is left (or another worker holds the subscription, or a retry waits
        its turn: who failed it scheduled the round, and the sweep is there too)."""
        with self.primary.connection() as guard, guard.transaction():
            if not outbox.try_lock(guard, subscription_id):
                return None
            with self.primary.connection() as conn:
                return self._round(conn, subscription_id)

    def _round(self, conn: Conn, subscription_id: str) -> datetime | None:
        ends = time.monotonic() + ROUND_SECONDS
        while time.monotonic() < ends:
            with conn.transaction():
                subscription = outbox.load(conn, subscription_id)
            if subscription is None:
                return None
            for test in _in_tx(conn, outbox.due_tests, subscription_id):
                self._attempt(conn, subscription, test)
            head = _in_tx(conn, outbox.head, subscription_id)
            if head is not None:
                if head.next_attempt_at > datetime.now(UTC):
                    return None
                if not self._attempt(conn, subscription, head):
                    return self._due(conn, subscription_id)
                continue
            sent = self._stream(conn, subscription)
            if sent is None:
                return None  # caught up
            if not sent:
                return self._due(conn, subscription_id)
        return datetime.now(UTC)

    @staticmethod
    def _due(conn: Conn, subscription_id: str) -> datetime | None:
        head = _in_tx(conn, outbox.head, subscription_id)
        return head.next_attempt_at if head is not None else None

    def _stream(self, conn: Conn, subscription: Subscription) -> bool | None:
        """Send the next batch of the stream in order: True when all went, False at the
        first failure, None when there was nothing new."""
        parts = None if "*" in subscription.stores else subscription.stores
        with self.replica.connection() as replica, replica.transaction():
            events = webhook_source.events_from(replica, parts, subscription.after_seq, BATCH)
            seqs = [row[0] for row in events]
            alerts = webhook_source.alerts_opened(replica, seqs) if seqs else []
        cursor = (subscription.after_seq, subscription.after_part)
        batch = messages.stream(subscription.id, events, alerts, subscription.types)
        fresh = [message for message in batch if (message.seq, message.part) > cursor]
        if not fresh and (not events or events[-1][0] <= subscription.after_seq):
            return None
        for message in fresh:
            with conn.transaction():
                delivery = outbox.record(conn, subscription.id, message)
            if not self._attempt(conn, subscription, delivery):
                return False
        with conn.transaction():  # past the events of types not subscribed to, too
            outbox.advance(conn, subscription.id, events[-1][0], outbox.ALL_PARTS)
        return True

    def _attempt(self, conn: Conn, subscription: Subscription, delivery: Delivery) -> bool:
        """Send one message once and record how it went; True when delivered."""
        outcome = self._send(subscription, delivery)
        with conn.transaction():
            if outcome.delivered:
                assert outcome.status is not None
                outbox.delivered(conn, delivery, subscription.id, outcome.status)
                return True
            self._failed(conn, subscription, delivery, outcome)
        return False

    def _send(self, subscription: Subscription, delivery: Delivery) -> sender.Outcome:
        try:
            pinned = pin(parse(subscription.url), self.allowed)
        except TargetRefused as refused:
            return sender.Outcome(None, f"{refused.code}: {refused.detail}")
        timestamp = int(time.time())
        payload = delivery.body.encode()
        headers = {
            "webhook-id": delivery.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                subscription.secrets, delivery.webhook_id, timestamp, payload
            ),
        }
        return sender.post(pinned, headers, payload, self.timeouts)

    def _failed(
        self, conn: Conn, subscription: Subscription, delivery: Delivery, outcome: sender.Outcome
    ) -> None:
        now = datetime.now(UTC)
        failing_since = delivery.first_failed_at or now
        if now - failing_since < GIVE_UP_AFTER:
            when = now + timedelta(seconds=backoff(delivery.attempts + 1))
            outbox.retry_at(conn, delivery, outcome.status, outcome.error, when)
            log.info(
                "webhook attempt failed",
                subscription=subscription.id,
                webhook_id=delivery.webhook_id,
                status=outcome.status,
                error=outcome.error,
                retry_at=when.isoformat(),
            )
            return
        stream = delivery.seq is not None
        reason = f"{delivery.webhook_id} failed for 3 days" if stream else None
        outbox.give_up(conn, delivery, outcome.status, outcome.error, reason)
        log.error(
            "webhook disabled: a message failed for 3 days" if stream else "webhook test given up",
            alert="webhook_disabled" if stream else None,
            subscription=subscription.id,
            url=subscription.url,
            webhook_id=delivery.webhook_id,
            attempts=delivery.attempts + 1,
        )


def _in_tx(conn: Conn, read: Callable[[Conn, str], T], subscription_id: str) -> T:
    with conn.transaction():
        return read(conn, subscription_id)
