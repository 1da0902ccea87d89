"""The API's pools lend a connection unchecked only moments after it last worked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from inventory.runtime.resources import RecentUse
from inventory.runtime.settings import Settings


@asynccontextmanager
async def one_connection_pool(url: str, recent: RecentUse) -> AsyncIterator[AsyncConnectionPool]:
    pool = AsyncConnectionPool(
        url, min_size=1, max_size=1, open=False, check=recent.check, reset=recent.reset
    )
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


async def used_backend(pool: AsyncConnectionPool) -> int:
    """Borrow, run a query, give back; the server process that answered."""
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT pg_backend_pid()")
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def kill(settings: Settings, pid: int) -> None:
    """End a server process as a restart would, behind the pool's back."""
    async with await psycopg.AsyncConnection.connect(settings.replica_admin_url) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


async def test_a_connection_idle_a_while_is_checked_and_replaced_when_its_server_is_gone(
    settings: Settings,
) -> None:
    async with one_connection_pool(settings.replica_url, RecentUse(fresh_seconds=0.2)) as pool:
        first = await used_backend(pool)
        await kill(settings, first)
        await asyncio.sleep(0.3)

        second = await used_backend(pool)

    assert second != first


async def test_a_connection_back_moments_ago_is_lent_without_a_round_trip(
    settings: Settings,
) -> None:
    """Unchecked, a connection whose server died since its last use fails its request
    (the API answers 503): the trade for one round trip less per request."""
    async with one_connection_pool(settings.replica_url, RecentUse(fresh_seconds=60)) as pool:
        first = await used_backend(pool)
        await kill(settings, first)

        with pytest.raises(psycopg.OperationalError):
            await used_backend(pool)
        after = await used_backend(pool)  # the broken one was discarded, not lent again

    assert after != first
