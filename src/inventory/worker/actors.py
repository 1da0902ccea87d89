"""Thin Dramatiq actors, and the sweep that bounds projection lag without Redis."""

from __future__ import annotations

import threading
import time

import dramatiq
import redis
import structlog
from psycopg_pool import ConnectionPool

from inventory.feed.publisher import publish_partition
from inventory.projectors.engine import catch_up, lags, project_partition
from inventory.projectors.registry import PROJECTORS
from inventory.runtime.settings import Settings
from inventory.worker import reservations

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


# One thread per partition at a time in this process: a wake-up for a partition another
# thread is serving returns at once (rather than wait for the checkpoint rows that thread
# holds, then find little to do), and that thread goes round once more before it lets
# go, so one round serves every wake-up that came meanwhile.
MAX_TURN = 60.0  # seconds a thread keeps one partition before it hands it on
_again: set[str] = set()
_busy: set[str] = set()
_busy_lock = threading.Lock()


@dramatiq.actor(queue_name="projections", max_retries=20, min_backoff=200, max_backoff=10_000)
def wake_projectors(partition: str) -> None:
    """Catch every projector up on one partition (a store id, or '' for global events),
    then publish the partition's feed."""
    with _busy_lock:
        if partition in _busy:
            _again.add(partition)
            return  # the thread serving it goes round again
        _busy.add(partition)
    structlog.contextvars.bind_contextvars(partition=partition)
    turn_ends = time.monotonic() + MAX_TURN
    try:
        while True:
            serve(partition)
            with _busy_lock:
                if partition not in _again:
                    _busy.discard(partition)
                    return
                _again.discard(partition)
                if time.monotonic() > turn_ends:  # well inside Dramatiq's time limit
                    _busy.discard(partition)
                    break
        wake_projectors.send(partition)  # whoever takes it goes round again
    except BaseException:
        with _busy_lock:  # Dramatiq retries the message, and the sweep runs anyway
            _busy.discard(partition)
        raise


def serve(partition: str) -> None:
    """One round for the partition on one connection: project, then publish."""
    assert _settings is not None
    with replica_pool().connection() as conn:
        applied = catch_up(conn, PROJECTORS, partition)
        if any(applied.values()):
            log.debug("projected", **applied)
        # Only now, with every read model committed, may the feed show these events.
        publish_partition(conn, feed_redis(), _settings.redis_namespace, partition)


def sweep() -> int:
    """Project every partition some projector trails, then publish what any partition
    has not published yet (a wake-up lost, or Redis down when it ran); returns the
    events applied."""
    with replica_pool().connection() as conn:
        every = lags(conn, PROJECTORS)
    total = 0
    for partition in sorted({lag.partition for lag in every if lag.behind}):
        total += sum(project_partition(replica_pool(), PROJECTORS, partition).values())
    for partition in sorted({lag.partition for lag in every}):
        publish(partition)
    return total


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
