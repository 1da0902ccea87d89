"""The webhook actor: one delivery round per message, and the wake-ups that send it."""

from __future__ import annotations

from datetime import UTC, datetime

import dramatiq
import structlog

from inventory.runtime.resources import retry_when
from inventory.webhooks import outbox
from inventory.webhooks.delivery import Deliverer
from inventory.webhooks.wakeups import ACTOR, QUEUE, wake
from inventory.worker.context import WorkerContext, current

log = structlog.get_logger(__name__)


@dramatiq.actor(
    actor_name=ACTOR,
    queue_name=QUEUE,
    retry_when=retry_when(10),  # a read-only primary: wait for the writable one
    min_backoff=1_000,
    max_backoff=60_000,
)
def deliver_webhooks(subscription_id: str) -> None:
    """Deliver what is due for one subscription; schedule the next round if one is due
    (a retry's time, or at once when the round ran out of time)."""
    due = deliverer(current()).run(subscription_id)
    if due is not None:
        delay = max(0, int((due - datetime.now(UTC)).total_seconds() * 1000))
        deliver_webhooks.send_with_options(args=(subscription_id,), delay=delay)


def deliverer(context: WorkerContext) -> Deliverer:
    """The context's deliverer; wiring.build_worker always builds one."""
    if context.webhooks is None:
        raise RuntimeError("the worker context has no webhook deliverer")
    return context.webhooks


def wake_covering(context: WorkerContext, partitions: list[str]) -> None:
    """Wake the subscriptions that may want these partitions' newly projected events."""
    if context.webhooks is None or not partitions:
        return
    try:
        with context.webhooks.primary.connection() as conn, conn.transaction():
            subscriptions = outbox.covering(conn, partitions)
    except Exception as error:  # noqa: BLE001 - projection stands; the sweep wakes them
        log.warning("webhook wake-ups not sent; the sweep will", error=str(error))
        return
    wake(subscriptions)


def sweep(context: WorkerContext) -> int:
    """Wake every live subscription not waiting out a back-off: a lost wake-up or delayed
    message costs one sweep interval, never a delivery. Returns how many were woken."""
    with deliverer(context).primary.connection() as conn, conn.transaction():
        subscriptions = outbox.sweepable(conn)
    wake(subscriptions)
    return len(subscriptions)
