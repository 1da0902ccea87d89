"""The Dramatiq broker: Redis, one namespace per deployment, asyncio actors enabled."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from inventory.runtime import telemetry
from inventory.runtime.settings import Settings


def build_broker(settings: Settings) -> RedisBroker:
    """A Redis broker for `settings`, installed as Dramatiq's global broker."""
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        url=settings.redis_url, namespace=f"{settings.redis_namespace}-dramatiq"
    )
    broker.add_middleware(AsyncIO())
    if telemetry.active():
        from inventory.worker.tracing import TracingMiddleware  # noqa: PLC0415 - the otel extra

        broker.add_middleware(TracingMiddleware())
    dramatiq.set_broker(broker)
    return broker
