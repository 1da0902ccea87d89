"""The socket watch on the session's primary and Redis: an announcement alone (no periodic
re-check) closes a revoked key's socket; without one, the re-check does."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg

from inventory.runtime import redis_clients
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.identity import CLI_ACTOR, create_key
from inventory.security.principal import Principal, Role
from inventory.security.ratelimit import identity_channel
from inventory.security.socket_watch import SocketWatch
from inventory.wiring import feed_client

NEVER = 3600.0  # a re-check interval no test waits for


async def new_key(resources: Resources, role: Role, stores: list[str]) -> Principal:
    async with resources.primary.connection() as conn:
        created = await create_key(
            conn, CLI_ACTOR, name="watched", role=role, stores=stores, check_stores=False
        )
    record = created.record
    return Principal(record.id, "api_key", record.name, role, tuple(stores), "127.0.0.1")


async def subscribed(resources: Resources, channel: str) -> None:
    """Wait until the watch listens on `channel` (an announcement before is lost)."""
    for _ in range(600):
        if (await resources.redis.pubsub_numsub(channel))[0][1]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nobody subscribed to {channel}")


async def test_an_announced_revocation_closes_the_socket_without_a_recheck(
    resources: Resources, settings: Settings
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    watch = SocketWatch(resources.primary, feed_client(settings), namespace, interval=NEVER)
    watch.start()
    try:
        principal = await new_key(resources, Role.VIEWER, ["*"])
        await asyncio.sleep(0)  # the recheck loop has started waiting
        watched = watch.watch(principal, None, None)
        await watch.recheck()  # the first pass finds it live: nothing decided yet
        assert not watched.verdict.done()
        await subscribed(resources, identity_channel(namespace))

        with ThreadPoolExecutor(1) as pool:
            await asyncio.wrap_future(
                pool.submit(
                    bootstrap.revoke_key,
                    settings.primary_url,
                    principal.id,
                    lambda: redis_clients.sync_client(settings.redis_url),
                    namespace,
                )
            )

        code, _ = await asyncio.wait_for(watched.verdict, 30)
        assert code == 4401
    finally:
        await watch.stop()


async def test_an_unannounced_scope_change_is_found_by_the_recheck(
    resources: Resources, settings: Settings
) -> None:
    watch = SocketWatch(resources.primary, feed_client(settings), f"t-{uuid.uuid4().hex[:8]}")
    principal = await new_key(resources, Role.MANAGER, ["a1", "a2"])
    watched = watch.watch(principal, frozenset({"a1", "a2"}), None)
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        await conn.execute("UPDATE api_keys SET stores = %s WHERE id = %s", (["a1"], principal.id))

    await watch.recheck()

    assert watched.verdict.result()[0] == 4403
    watch.forget(watched)
