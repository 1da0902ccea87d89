"""Thin Dramatiq actors for projection, and the sweep that bounds lag without Redis."""

from __future__ import annotations

import time
from collections.abc import Iterable

import dramatiq

from inventory.feed.publisher import publish_partitions, publish_unpublished
from inventory.projectors import stalls
from inventory.projectors.lag import lags
from inventory.readmodels.registry import PROJECTORS
from inventory.worker import webhooks
from inventory.worker.context import WorkerContext, current
from inventory.worker.wakeups import wake

# One thread serves this process's wake-ups at a time, every partition woken so far in
# one round: a wake-up that comes while a round runs adds its partition and returns at
# once, and the serving thread goes round again for all the partitions woken meanwhile.
# A round's statements cost the same for one partition as for twenty, so under load the
# replica and this process pay them once per round rather than once per store.
MAX_TURN = 60.0  # seconds a thread keeps serving before it hands on


@dramatiq.actor(queue_name="projections", max_retries=20, min_backoff=200, max_backoff=10_000)
def wake_projectors(partition: str) -> None:
    """Catch every projector up on one partition (a store id, or '' for global events)
    and on every other partition woken meanwhile, then publish their feeds."""
    if left := serve_woken(current(), [partition]):
        wake(left)  # whoever takes them serves them


def serve_woken(context: WorkerContext, partitions: Iterable[str]) -> list[str]:
    """Add `partitions` to the woken ones and, unless a thread serves them already, serve
    rounds until none is left or the turn ends; the partitions left to hand on."""
    serving = context.serving
    with serving.lock:
        serving.woken.update(partitions)
        if serving.active:
            return []  # the serving thread takes it in its next round
        serving.active = True
    turn_ends = time.monotonic() + MAX_TURN
    taken: list[str] = []
    try:
        while True:
            with serving.lock:
                if not serving.woken or time.monotonic() > turn_ends:  # inside the time limit
                    left, taken = sorted(serving.woken), []
                    serving.woken.clear()
                    serving.active = False
                    return left
                taken = sorted(serving.woken)
                serving.woken.clear()
            serve(context, taken)
    except BaseException:
        # Dramatiq retries the message (a broken connection, Redis down while publishing);
        # the next round serves the rest again, but not a stalled partition (the sweep
        # retries it when its back-off allows).
        with serving.lock:
            stalled = context.containment.is_stalled
            serving.woken.update(partition for partition in taken if not stalled(partition))
            serving.active = False
        raise


def serve(context: WorkerContext, partitions: list[str]) -> None:
    """One round for the partitions on one connection: project, then publish those that
    projected (a stalled one publishes nothing: the feed shows only projected events)."""
    namespace = context.settings.redis_namespace
    with context.replica.connection() as conn:
        projected = context.containment.project(conn, partitions).projected
        if projected:
            # Only now, with every read model committed, may the feed show these events.
            publish_partitions(conn, context.redis, namespace, projected)
    webhooks.wake_covering(context, projected)


def sweep(context: WorkerContext) -> int:
    """Project every partition some projector trails (a stalled one when its back-off
    allows), forget stalls a partition has got past, then publish what any partition has
    not published yet (a wake-up lost, or Redis down when it ran); returns the events
    applied."""
    with context.replica.connection() as conn:
        with conn.transaction():  # ended here: every batch below commits on its own
            every = lags(conn, PROJECTORS)
        behind = sorted({lag.partition for lag in every if lag.behind})
        applied = context.containment.project(conn, behind).applied if behind else 0
        stalls.clear_past(conn)
        publish_unpublished(conn, context.redis, context.settings.redis_namespace)
    return applied
