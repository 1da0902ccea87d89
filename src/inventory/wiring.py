"""The composition root: what `inventory serve`, `inventory worker` and the tests share,
each piece built once from the settings and closed in reverse order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from dramatiq.brokers.redis import RedisBroker
from litestar import Litestar
from psycopg_pool import ConnectionPool

from inventory.api.app import create_app
from inventory.domain.events import ALL_EVENTS
from inventory.eventstore.codec import Codec
from inventory.eventstore.store import EventStore
from inventory.feed.hub import FeedHub
from inventory.runtime import redis_clients, telemetry
from inventory.runtime.resources import (
    Resources,
    connect_options,
    pool,
    sync_writer_checks,
    writer_options,
)
from inventory.runtime.settings import ConfigurationError, Settings
from inventory.security.context import Security
from inventory.security.socket_watch import SocketWatch
from inventory.service import CommandService, Decision
from inventory.webhooks.delivery import Deliverer
from inventory.webhooks.targets import networks
from inventory.worker import context as worker_context
from inventory.worker.broker import build_broker
from inventory.worker.context import CommandServices, WorkerContext
from inventory.worker.metrics import WEBHOOKS_DISABLED, MessageMetrics
from inventory.worker.wakeups import after_commit, wake_committed


@dataclass(frozen=True)
class Services:
    """What one API process shares across requests: built by `build`, owned by its lifespan."""

    settings: Settings
    resources: Resources  # the pools on the primary and the replica, and Redis
    broker: RedisBroker  # carries the wake-ups and expiry reminders sent after each commit
    store: EventStore
    service: CommandService
    security: Security
    feed_hub: FeedHub  # one Redis subscription per process carries every store's messages
    socket_watch: SocketWatch  # open sockets follow their principals' rights
    queue_report: Callable[[str], None]  # sends a requested report to the workers


def jwt_secret_of(settings: Settings) -> str:
    """The secret that signs access tokens, or ConfigurationError: serve cannot run without."""
    if not settings.jwt_secret:
        raise ConfigurationError("INVENTORY_JWT_SECRET not set: it signs the access tokens")
    return settings.jwt_secret


def app(settings: Settings | None = None) -> Litestar:
    """The API (`inventory serve`) over `build`; `settings` default to the environment."""
    settings = settings or Settings.from_env()
    jwt_secret_of(settings)  # refused now, not at the first request
    telemetry.configure("api")  # before the app: its middleware follows
    return create_app(settings, build)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open the pools (without waiting for a connection) and Redis; close them after:
    the primary, the read side (INVENTORY_READ_URL) and, when reads go to standbys, a
    small pool on the replica itself for what the API writes there (report runs)."""
    primary = pool(settings.primary_url, settings, "primary", writer=True)
    read_url = settings.read_url or settings.replica_url
    replica = pool(read_url, settings, "replica")
    itself = None
    if read_url != settings.replica_url:
        itself = pool(settings.replica_url, settings, "replica-writes", max_size=4)
    client = redis_clients.async_client(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
    # wait=False: the process starts (and /health/ready says what is down) even when a
    # database is unreachable; the pools keep trying in the background.
    pools = [p for p in (primary, replica, itself) if p is not None]
    for each in pools:
        await each.open(wait=False)
    try:
        yield Resources(settings, primary, replica, client, itself)
    finally:
        await client.aclose()
        for each in reversed(pools):
            await each.close()


def feed_client(settings: Settings) -> Callable[[], aioredis.Redis]:
    """A new Redis client for each subscription the feed hub or socket watch (re)opens."""
    return lambda: redis_clients.async_client(
        settings.redis_url, socket_connect_timeout=2, socket_keepalive=True
    )


def security_of(resources: Resources, jwt_secret: str) -> Security:
    """The authenticator and rate limiter over the process's primary pool and Redis."""
    settings = resources.settings
    return Security.of(
        resources.primary,
        resources.redis,
        jwt_secret,
        namespace=settings.redis_namespace,
        budgets=settings.budgets,
        trusted_proxies=settings.trusted_proxies,
        jwt_ttl_seconds=settings.jwt_ttl_seconds,
        fail_open=settings.rate_limit_fail_open,
    )


@asynccontextmanager
async def build(settings: Settings) -> AsyncIterator[Services]:
    """Everything an API process shares, built once; the hub and the watch running."""
    jwt_secret = jwt_secret_of(settings)
    async with open_resources(settings) as resources:
        broker = build_broker(settings)
        store = EventStore(Codec(ALL_EVENTS))
        security = security_of(resources, jwt_secret)
        services = Services(
            settings=settings,
            resources=resources,
            broker=broker,
            store=store,
            service=CommandService(resources.primary, after_commit=after_commit, store=store),
            security=security,
            feed_hub=FeedHub(
                feed_client(settings), settings.redis_namespace, settings.feed_queue_size
            ),
            socket_watch=SocketWatch(
                resources.primary,
                feed_client(settings),
                settings.redis_namespace,
                on_change=security.cache.entries.clear,
            ),
            queue_report=_queue_report,
        )
        services.feed_hub.start()
        services.socket_watch.start()
        try:
            yield services
        finally:
            await services.socket_watch.stop()
            await services.feed_hub.stop()
            await services.service.drain()
            broker.close()


def _queue_report(report_id: str) -> None:
    from inventory.worker.reports import build_report  # noqa: PLC0415 - needs the broker

    build_report.send(report_id)


def _wake_after(decisions: Sequence[Decision]) -> None:
    """The worker's own commands (expiry) only wake the projectors of the stores touched."""
    wake_committed(decisions)


def _deliverer(settings: Settings, replica: ConnectionPool) -> Deliverer:
    """Webhook delivery on its own primary pool, so a slow target never starves commands."""
    primary = ConnectionPool(
        settings.primary_url,
        min_size=0,
        max_size=8,
        name="worker-webhooks",
        kwargs={**connect_options(settings), **writer_options(settings.primary_url)},
        reconnect_timeout=5.0,  # follow a promoted standby within seconds (resources.py)
        open=True,
        **sync_writer_checks(settings.primary_url),
    )
    allowed = networks(settings.webhook_allowed_networks)
    return Deliverer(primary, replica, allowed, disabled=WEBHOOKS_DISABLED.inc)


@contextmanager
def build_worker(settings: Settings) -> Iterator[WorkerContext]:
    """The worker's context: the broker (before any actor is declared), the replica pool,
    the feed's Redis client and the primary's command services; installed for the actors
    while the block runs, closed after."""
    telemetry.configure("worker")  # before the broker: its middleware follows
    broker = build_broker(settings)
    broker.add_middleware(MessageMetrics())
    context = WorkerContext(
        settings=settings,
        broker=broker,
        replica=ConnectionPool(
            settings.replica_url,
            min_size=1,
            max_size=8,
            name="worker-replica",
            check=ConnectionPool.check_connection,
            kwargs=connect_options(settings),
            open=True,
        ),
        redis=redis_clients.sync_client(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5
        ),
        commands=CommandServices(
            settings.primary_url, after_commit=_wake_after, options=connect_options(settings)
        ),
    )
    context.webhooks = _deliverer(settings, context.replica)
    worker_context.install(context)
    try:
        yield context
    finally:
        broker.close()
        worker_context.install(None)
        context.close()
        telemetry.shutdown()
