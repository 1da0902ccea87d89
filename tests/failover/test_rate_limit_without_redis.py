"""The rate limiter while its Redis is away: open admits, closed refuses, and both count
again once Redis is back, however steady the traffic in between."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest

from inventory.runtime import redis_clients
from inventory.runtime.processes import free_port
from inventory.runtime.valkey_server import EmbeddedValkey
from inventory.security.ratelimit import Budget, RateLimiter

pytestmark = [pytest.mark.failover, pytest.mark.integration]

BUDGETS = {"clerk": Budget(1000, 60)}


async def decisions_until_counted(limiter: RateLimiter, seconds: float) -> tuple[int, bool]:
    """Calls at 50/s until one is counted in Redis again (or `seconds` pass): how many
    were decided without Redis, and whether counting resumed."""
    degraded = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        decision = await limiter.hit("clerk", "till-1")
        if not decision.degraded:
            return degraded, True
        degraded += 1
        await asyncio.sleep(0.02)
    return degraded, False


async def test_the_limiter_fails_open_or_closed_and_counts_again_when_redis_returns(
    tmp_path: Path,
) -> None:
    server = EmbeddedValkey(tmp_path / "redis", free_port(), secrets.token_hex(8), durable=False)
    server.start()
    server.wait_ready()
    client = redis_clients.async_client(server.url, socket_connect_timeout=1, socket_timeout=1)
    opened = RateLimiter(client, "t-open", BUDGETS)
    closed = RateLimiter(client, "t-closed", BUDGETS, fail_open=False)
    try:
        assert not (await opened.hit("clerk", "till-1")).degraded
        server.stop()

        admitted = await opened.hit("clerk", "till-1")
        refused = await closed.hit("clerk", "till-1")
        assert (admitted.allowed, admitted.degraded) == (True, True)
        assert (refused.allowed, refused.degraded) == (False, True)
        assert refused.headers()["Retry-After"] == "1"

        server.start()
        server.wait_ready()
        started = time.monotonic()
        without, counted = await decisions_until_counted(opened, 10)
        print(  # noqa: T201 - the back-off's cost, in calls decided without Redis
            f"\nlimiter: counting again {time.monotonic() - started:.2f} s after Redis "
            f"returned, {without} calls decided without it meanwhile"
        )
        assert counted, "steady calls kept the limiter from ever trying Redis again"
        assert not (await closed.hit("clerk", "till-1")).degraded
    finally:
        await client.aclose()
        server.stop()
