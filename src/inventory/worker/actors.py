"""Thin Dramatiq actors, and the sweep that bounds projection lag without Redis."""

from __future__ import annotations

import threading
import time

import dramatiq
import redis
import structlog
from psycopg_pool import ConnectionPool

from inventory.feed.publisher import publish_partition, publish_partitions
from inventory.projectors import stalls
from inventory.projectors.lag import lags
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.settings import Settings
from inventory.worker import reservations
from inventory.worker.containment import is_stalled, project_contained

log = structlog.get_logger(__name__)

_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
_settings: Settings | None = None
_redis: redis.Redis | None = None


def configure(settings: Settings) -> None:
    """Give the actors their settings; the replica pool opens on first use."""
    global _settings  # noqa: PLW0603 - one worker process, one configuration
    _settings = settings


def replica_pool() -> ConnectionPool:
    """The process's pool on the replica, opened lazily (actors run on worker threads)."""
    global _pool  # noqa: PLW0603 - one pool per process, created once
    with _pool_lock:
        if _pool is None:
            if _settings is None:
                raise RuntimeError("worker actors used before configure()")
            _pool = ConnectionPool(
                _settings.replica_url,
                min_size=1,
                max_size=8,
                name="worker-replica",
                check=ConnectionPool.check_connection,
                open=True,
            )
        return _pool


def feed_redis() -> redis.Redis:
    """The process's Redis client for live-feed messages (thread-safe: a pool inside)."""
    global _redis  # noqa: PLW0603 - one client per process, created once
    with _pool_lock:
        if _redis is None:
            if _settings is None:
                raise RuntimeError("worker actors used before configure()")
            _redis = redis.Redis.from_url(
                _settings.redis_url, socket_connect_timeout=2, socket_timeout=5
            )
        return _redis


def close() -> None:
    """Close the replica pool and the Redis client at shutdown."""
    global _pool, _redis  # noqa: PLW0603
    with _pool_lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        if _redis is not None:
            _redis.close()
            _redis = None


def publish(partition: str) -> int:
    """Publish the partition's newly projected events to its live-feed channel."""
    assert _settings is not None
    with replica_pool().connection() as conn:
        return publish_partition(conn, feed_redis(), _settings.redis_namespace, partition)


# One thread serves this process's wake-ups at a time, every partition woken so far in
# one round: a wake-up that comes while a round runs adds its partition and returns at
# once, and the serving thread goes round again for all the partitions woken meanwhile.
# A round's statements cost the same for one partition as for twenty, so under load the
# replica and this process pay them once per round rather than once per store.
MAX_TURN = 60.0  # seconds a thread keeps serving before it hands on
_woken: set[str] = set()  # partitions woken and not yet taken by a round
_serving = False
_woken_lock = threading.Lock()


@dramatiq.actor(queue_name="projections", max_retries=20, min_backoff=200, max_backoff=10_000)
def wake_projectors(partition: str) -> None:
    """Catch every projector up on one partition (a store id, or '' for global events)
    and on every other partition woken meanwhile, then publish their feeds."""
    global _serving  # noqa: PLW0603 - one serving thread per process
    with _woken_lock:
        _woken.add(partition)
        if _serving:
            return  # the serving thread takes it in its next round
        _serving = True
    turn_ends = time.monotonic() + MAX_TURN
    taken: list[str] = []
    try:
        while True:
            with _woken_lock:
                if not _woken or time.monotonic() > turn_ends:  # well inside the time limit
                    left, taken = sorted(_woken), []
                    _woken.clear()
                    _serving = False
                    break
                taken = sorted(_woken)
                _woken.clear()
            serve(taken)
    except BaseException:
        # Dramatiq retries the message (a broken connection, Redis down while publishing);
        # the next round serves the rest again, but not a stalled partition (the sweep
        # retries it when its back-off allows).
        with _woken_lock:
            _woken.update(partition for partition in taken if not is_stalled(partition))
            _serving = False
        raise
    for part in left:
        wake_projectors.send(part)  # whoever takes it serves them


def serve(partitions: list[str]) -> None:
    """One round for the partitions on one connection: project, then publish those that
    projected (a stalled one publishes nothing: the feed shows only projected events)."""
    assert _settings is not None
    with replica_pool().connection() as conn:
        projected = project_contained(conn, partitions).projected
        if projected:
            # Only now, with every read model committed, may the feed show these events.
            publish_partitions(conn, feed_redis(), _settings.redis_namespace, projected)


def sweep() -> int:
    """Project every partition some projector trails (a stalled one when its back-off
    allows), forget stalls a partition has got past, then publish what any partition has
    not published yet (a wake-up lost, or Redis down when it ran); returns the events
    applied."""
    with replica_pool().connection() as conn:
        with conn.transaction():  # ended here: every batch below commits on its own
            every = lags(conn, PROJECTORS)
        behind = sorted({lag.partition for lag in every if lag.behind})
        applied = project_contained(conn, behind).applied if behind else 0
        stalls.clear_past(conn)
    for partition in sorted({lag.partition for lag in every}):
        publish(partition)
    return applied


def _sweep_forever(settings: Settings, stop: threading.Event) -> None:
    from inventory.worker import reports  # noqa: PLC0415 - it imports this module

    while not stop.wait(settings.sweep_interval_seconds):
        try:
            applied = sweep()
            overdue = reservations.sweep_overdue(settings.primary_url)
            requeued = reports.requeue_stale()
            expired = reports.expire_finished(settings.report_retention_days)
        except Exception:  # the sweep must outlive a replica or primary restart
            log.exception("sweep failed; retrying next interval")
            continue
        if applied:
            log.info("sweep projected events a wake-up missed", events=applied)
        if overdue:
            log.info("sweep found reservations past their expiry", reservations=overdue)
        if requeued:
            log.info("sweep re-sent reports whose message was lost", reports=requeued)
        if expired:
            log.info("sweep deleted reports past their retention", reports=expired)


def start_background(settings: Settings, stop: threading.Event) -> None:
    """Start the periodic sweep; it runs until `stop` is set."""
    configure(settings)
    reservations.configure(settings)
    thread = threading.Thread(
        target=_sweep_forever,
        args=(settings, stop),
        name="projection-sweep",
        daemon=True,
    )
    thread.start()
