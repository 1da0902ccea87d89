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
MAX_POSITION = 2**63 - 1  # a position is a bigint


def entry(partition: str | None, position: int | None = None) -> str:
    """One wake-up in the list: the partition ('' for events of no store) and, after a
    space, the position of a committed event its rounds must find in the replica's copy.
    The worker serves such a wake-up at once and again when that event has been
    replicated: a wake-up often beats its commit to the replica, and its first round
    then finds nothing (listener.py). None: served at once only."""
    return partition or "" if position is None else f"{partition or ''} {position}"


def parse(text: str) -> tuple[str, int | None]:
    """The partition and the awaited position (or None) of a wake-up `entry`."""
    partition, space, position = text.partition(" ")
    digits = space and position.isascii() and position.isdigit() and len(position) <= 19
    if digits and int(position) <= MAX_POSITION:
        return partition, int(position)
    return text, None  # the old form, a partition alone


def wake(partitions: Iterable[str | None], position: int | None = None) -> None:
    """Ask the workers to project these partitions (and again once the event at
    `position`, if given, is in the replica's copy), all in one Redis round trip."""
    send({entry(partition, position) for partition in partitions})


def send(entries: Iterable[str]) -> None:
    """Push wake-up `entries` in one Redis round trip. A lost wake-up costs only latency:
    the sweep finds what no wake-up announced."""
    woken = sorted(set(entries))
    if not woken:
        return
    broker: RedisBroker = dramatiq.get_broker()  # type: ignore[assignment]
    try:
        push(broker.client, wake_up_key(broker), woken)
    except Exception as error:  # noqa: BLE001 - the commit stands; the sweep catches up
        log.warning("wake-up not sent; the sweep will catch up", entries=woken, error=str(error))


def wake_committed(decisions: Sequence[Decision]) -> None:
    """A wake-up per store and committed command, with the command's last position: the
    worker serves it once the replica has that event, and so all of the command's events
    (a transaction is replicated whole)."""
    send(
        entry(partition, decision.result.position)
        for decision in decisions
        for partition in decision.partitions
    )


def push(client: redis.Redis, key: str, partitions: Sequence[str]) -> None:
    """Append `partitions` to the wake-up list and keep it bounded, in one round trip."""
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, *partitions)
    pipe.ltrim(key, -MAX_WAITING, -1)
    pipe.execute()


def after_commit(decisions: Sequence[Decision]) -> None:
    """Everything the command service does once commands have committed: their wake-ups
    and the expiry reminders of the reservations they placed."""
    from inventory.worker import reservations  # noqa: PLC0415 - needs the broker

    wake_committed(decisions)
    for decision in decisions:
        reservations.schedule(decision)
