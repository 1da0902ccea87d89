"""What follows a commit: wake-ups (one Redis list entry per store touched) and expiry reminders."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import dramatiq
import structlog

from inventory.worker.broker import wake_up_key

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from inventory.service import Decision

log = structlog.get_logger(__name__)

# Wake-ups waiting for a worker: a list is a hint, never the record (the projectors'
# checkpoints are), so with no worker running the oldest are dropped rather than grown
# without bound; the sweep projects whatever they announced.
MAX_WAITING = 10_000


def wake(partitions: Iterable[str | None]) -> None:
    """Ask the workers to project these partitions, all in one Redis round trip. A lost
    wake-up costs only latency: the sweep finds what no wake-up announced."""
    woken = sorted({p or "" for p in partitions})
    if not woken:
        return
    broker: RedisBroker = dramatiq.get_broker()  # type: ignore[assignment]
    try:
        push(broker.client, wake_up_key(broker), woken)
    except Exception as error:  # noqa: BLE001 - the commit stands; the sweep catches up
        log.warning("wake-up not sent; the sweep will catch up", partitions=woken, error=str(error))


def push(client: redis.Redis, key: str, partitions: Sequence[str]) -> None:
    """Append `partitions` to the wake-up list and keep it bounded, in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, *partitions)
    pipe.ltrim(key, -MAX_WAITING, -1)
    pipe.execute()


def after_commit(decisions: Sequence[Decision]) -> None:
    """Everything the command service does once commands have committed: one wake-up per
    store they touched, and the expiry reminders of the reservations they placed."""
    from inventory.worker import reservations  # noqa: PLC0415 - needs the broker

    wake(partition for decision in decisions for partition in decision.partitions)
    for decision in decisions:
        reservations.schedule(decision)
