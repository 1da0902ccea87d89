"""The Dramatiq broker: Redis, one namespace per deployment, asyncio actors enabled."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from inventory.runtime import redis_clients, telemetry
from inventory.runtime.settings import Settings


def wake_up_key(broker: RedisBroker) -> str:
    """The Redis list of woken partitions (worker/listener.py), in the broker's namespace."""
    return f"{broker.namespace}:wake-ups"


def build_broker(settings: Settings) -> RedisBroker:
    """A Redis broker for `settings`, installed as Dramatiq's global broker."""
    # A client, not a URL: dramatiq cannot read a Sentinel URL, and a sent message must
    # not wait forever on a Redis that stopped answering (the sweep makes up for a loss).
    client = redis_clients.sync_client(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5
    )
    broker = RedisBroker(  # type: ignore[no-untyped-call]
        client=client, namespace=f"{settings.redis_namespace}-dramatiq"
    )
    broker.add_middleware(AsyncIO())
    if telemetry.active():
        from inventory.worker.tracing import TracingMiddleware  # noqa: PLC0415 - the otel extra

        broker.add_middleware(TracingMiddleware())
    dramatiq.set_broker(broker)
    return broker
