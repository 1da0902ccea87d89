"""min_position waits for the exact event; X-Read-Position says how far the side got."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from inventory.api import reads
from inventory.api.errors import ApiError
from inventory.projectors.engine import project
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from tests.projection_helpers import append_counted, wait_replicated


@pytest.fixture
def replica_pool(settings: Settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as pool:
        yield pool


def project_all(pool: ConnectionPool, partition: str) -> None:
    for projector in PROJECTORS:
        project(pool, projector, partition)


async def test_a_query_waits_for_its_write_and_reports_the_read_position(
    resources: Resources, settings: Settings, replica_pool: ConnectionPool, store_id: str
) -> None:
    async with resources.primary.connection() as conn:
        positions = await append_counted(conn, f"test-{store_id}", store_id, 3)
    wait_replicated(settings.replica_url, positions)

    waiting = asyncio.create_task(reads.wait_for(resources.replica, positions[-1]))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # replicated, but not projected yet
    await asyncio.to_thread(project_all, replica_pool, store_id)
    await asyncio.wait_for(waiting, 5)

    headers = await reads.prepare(resources.replica, positions[-1], store_id)
    assert int(headers["X-Read-Position"]) == max(positions)


async def test_a_position_the_read_side_never_reaches_is_a_503_read_model_lagging(
    resources: Resources,
) -> None:
    with pytest.raises(ApiError) as lagging:
        await reads.wait_for(resources.replica, 10**15, max_wait=0.3)

    assert (lagging.value.status, lagging.value.code) == (503, "read_model_lagging")
    assert lagging.value.headers["Retry-After"] == "1"


async def fail_in_a_transaction(pool: AsyncConnectionPool, store: str) -> None:
    async with reads.reading(pool, None, store) as (conn, _):
        await conn.execute("BEGIN")
        raise ZeroDivisionError


async def test_a_query_reads_outside_a_transaction_and_returns_its_connection_as_it_was(
    settings: Settings, store_id: str
) -> None:
    async with AsyncConnectionPool(settings.replica_url, min_size=1, max_size=1) as pool:
        async with reads.reading(pool, None, store_id) as (conn, _):
            await conn.execute("SELECT 1")
            assert conn.info.transaction_status == TransactionStatus.IDLE  # no BEGIN sent
        with pytest.raises(ZeroDivisionError):
            await fail_in_a_transaction(pool, store_id)

        async with pool.connection() as conn:
            assert conn.info.transaction_status == TransactionStatus.IDLE
            assert not conn.autocommit
            await conn.execute("SELECT 1")
            assert conn.info.transaction_status == TransactionStatus.INTRANS
