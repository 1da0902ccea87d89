"""The composition root's shared resources: one pool per database and a Redis client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from inventory.runtime.settings import Settings


@dataclass(frozen=True)
class Resources:
    """What a process shares across requests or messages; owned by its lifespan."""

    settings: Settings
    primary: AsyncConnectionPool  # writes: commands append here
    replica: AsyncConnectionPool  # reads: queries, history and the feed
    redis: aioredis.Redis


def _pool(url: str, settings: Settings, name: str) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_max_size, settings.pool_min_size),
        name=name,
        open=False,
        timeout=10.0,
        # A server restart leaves broken connections in the pool; checking on checkout
        # costs one round trip and turns them into a reconnect instead of a failed request.
        check=AsyncConnectionPool.check_connection,
        kwargs={"application_name": f"inventory-{name}"},
    )


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open both pools (without waiting for a connection) and Redis; close them after."""
    primary = _pool(settings.primary_url, settings, "primary")
    replica = _pool(settings.replica_url, settings, "replica")
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )
    # wait=False: the process starts (and /health/ready says what is down) even when a
    # database is unreachable; the pools keep trying in the background.
    await primary.open(wait=False)
    await replica.open(wait=False)
    try:
        yield Resources(settings, primary, replica, client)
    finally:
        await client.aclose()
        await replica.close()
        await primary.close()
