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
from inventory.readmodels.rows import Row
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
    # Called once per subscription disabled after its failures, once that has committed
    # (the worker counts them).
    disabled: Callable[[], None] = field(default=lambda: None)

    def run(self, subscription_id: str) -> datetime | None:
        """One round; returns when the next round should start: when the next attempt
        falls due after a failure here, now when the round ran out of time or more came
        meanwhile, None when nothing is left (or another worker holds the subscription, or
        a retry waits its turn: who failed it scheduled the round, and the sweep is there
        too)."""
        with self.primary.connection() as guard, guard.transaction():
            if not outbox.try_lock(guard, subscription_id):
                return None
            with self.primary.connection() as conn:
                due, caught_up = self._round(conn, subscription_id)
        # A wake-up refused while the lock was held is lost; its events were projected
        # before it was sent, so this look after the release sees them.
        if caught_up and self._more(subscription_id):
            return datetime.now(UTC)
        return due

    def _round(self, conn: Conn, subscription_id: str) -> tuple[datetime | None, bool]:
        ends = time.monotonic() + ROUND_SECONDS
        while time.monotonic() < ends:
            with conn.transaction():
                subscription = outbox.load(conn, subscription_id)
            if subscription is None:
                return None, False
            for test in _in_tx(conn, outbox.due_tests, subscription_id):
                self._retry(conn, subscription, test)
            head = _in_tx(conn, outbox.head, subscription_id)
            if head is not None:
                if head.next_attempt_at > datetime.now(UTC):
                    return None, False
                if not self._retry(conn, subscription, head):
                    return self._due(conn, subscription_id), False
                continue
            sent = self._stream(conn, subscription)
            if sent is None:
                return None, True
            if not sent:
                return self._due(conn, subscription_id), False
        return datetime.now(UTC), False

    @staticmethod
    def _due(conn: Conn, subscription_id: str) -> datetime | None:
        head = _in_tx(conn, outbox.head, subscription_id)
        return head.next_attempt_at if head is not None else None

    def _events(self, subscription: Subscription, after: int, limit: int) -> list[Row]:
        parts = None if "*" in subscription.stores else subscription.stores
        with self.replica.connection() as replica, replica.transaction():
            return webhook_source.events_from(replica, parts, after, limit)

    def _more(self, subscription_id: str) -> bool:
        with self.primary.connection() as conn, conn.transaction():
            subscription = outbox.load(conn, subscription_id)
        if subscription is None:
            return False
        done = subscription.after_part == outbox.ALL_PARTS
        return bool(self._events(subscription, subscription.after_seq + done, 1))

    def _stream(self, conn: Conn, subscription: Subscription) -> bool | None:
        """Send the next batch of the stream in order: True when all went, False at the
        first failure, None when there was nothing new."""
        events = self._events(subscription, subscription.after_seq, BATCH)
        if not events:
            return None
        with self.replica.connection() as replica, replica.transaction():
            alerts = webhook_source.alerts_opened(replica, [row[0] for row in events])
        cursor = (subscription.after_seq, subscription.after_part)
        for message in messages.stream(subscription.id, events, alerts, subscription.types):
            if (message.seq, message.part) > cursor and not self._first(
                conn, subscription, message
            ):
                return False
        if (events[-1][0], outbox.ALL_PARTS) <= cursor:
            return None
        with conn.transaction():  # past the events of types not subscribed to, too
            outbox.relaxed(conn)
            outbox.advance(conn, subscription.id, events[-1][0], outbox.ALL_PARTS)
        return True

    def _first(self, conn: Conn, subscription: Subscription, message: messages.Message) -> bool:
        """A message's first attempt, recorded with its outcome; True when delivered."""
        outcome = self._send(subscription, message.webhook_id, message.body)
        retry = None
        if not outcome.delivered:
            retry = datetime.now(UTC) + timedelta(seconds=backoff(1))
            _failure_logged(subscription, message.webhook_id, outcome, retry)
        with conn.transaction():
            outbox.relaxed(conn)
            outbox.first_attempt(
                conn, subscription.id, message, (outcome.status, outcome.error), retry
            )
        return outcome.delivered

    def _retry(self, conn: Conn, subscription: Subscription, delivery: Delivery) -> bool:
        """Send a logged message again and record how it went; True when delivered."""
        outcome = self._send(subscription, delivery.webhook_id, delivery.body)
        with conn.transaction():
            outbox.relaxed(conn)
            if outcome.delivered:
                assert outcome.status is not None
                outbox.delivered(conn, delivery, subscription.id, outcome.status)
                return True
            disabled = self._failed(conn, subscription, delivery, outcome)
        if disabled:
            self.disabled()  # counted once the disabling has committed
        return False

    def _send(self, subscription: Subscription, webhook_id: str, body: str) -> sender.Outcome:
        try:
            pinned = pin(parse(subscription.url), self.allowed)
        except TargetRefused as refused:
            return sender.Outcome(None, f"{refused.code}: {refused.detail}")
        timestamp = int(time.time())
        payload = body.encode()
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                subscription.secrets, webhook_id, timestamp, payload
            ),
        }
        return sender.post(pinned, headers, payload, self.timeouts)

    def _failed(
        self, conn: Conn, subscription: Subscription, delivery: Delivery, outcome: sender.Outcome
    ) -> bool:
        """Record a failed attempt: a retry later, or given up; True when that disabled the
        subscription (a stream message failing for 3 days)."""
        now = datetime.now(UTC)
        failing_since = delivery.first_failed_at or now
        if now - failing_since < GIVE_UP_AFTER:
            when = now + timedelta(seconds=backoff(delivery.attempts + 1))
            outbox.retry_at(conn, delivery, outcome.status, outcome.error, when)
            _failure_logged(subscription, delivery.webhook_id, outcome, when)
            return False
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
        return stream


def _failure_logged(
    subscription: Subscription, webhook_id: str, outcome: sender.Outcome, retry: datetime
) -> None:
    log.info(
        "webhook attempt failed",
        subscription=subscription.id,
        webhook_id=webhook_id,
        status=outcome.status,
        error=outcome.error,
        retry_at=retry.isoformat(),
    )


def _in_tx(conn: Conn, read: Callable[[Conn, str], T], subscription_id: str) -> T:
    with conn.transaction():
        return read(conn, subscription_id)
