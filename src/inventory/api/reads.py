"""Read-your-writes on the replica: `min_position` waits, `X-Read-Position` reports.

A command answers with the `position` of its last event. A query that sends
`min_position=P` waits (bounded) until event P is in the replica's events copy *and*
every projector has applied it in its partition; the check is exact, because positions
are not commit-ordered and "the highest position seen" would say nothing about P.
`X-Read-Position` is the highest position every projector has applied in the partition a
query reads (for a query across stores, in the partition that got furthest): a hint of
how fresh the answer is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from litestar.params import Parameter
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

from inventory.api.errors import ApiError
from inventory.projectors import lag
from inventory.readmodels import history
from inventory.readmodels.registry import projector_names

READ_POSITION_HEADER = "X-Read-Position"
MAX_WAIT_SECONDS = 5.0

MinPosition = Parameter(
    ge=0,
    le=2**63 - 1,  # a position is a bigint: a larger one can never be reached
    required=False,
    description="Wait (up to 5 s) until the read side has applied the event at this "
    "position (a command result's `position`); 503 `read_model_lagging` otherwise.",
)


async def wait_for(
    pool: AsyncConnectionPool[Any],
    min_position: int | None,
    max_wait: float = MAX_WAIT_SECONDS,
    *,
    projected: bool = True,
) -> None:
    """Return once the event at `min_position` is projected (or, not `projected`, only in
    the replica's events copy); 503 after `max_wait` seconds."""
    if min_position is None or min_position == 0:
        return
    # No projector named: the check is the event's presence in the copy alone.
    names = projector_names() if projected else []
    deadline = time.monotonic() + max_wait
    pause = 0.005
    while True:
        async with pool.connection() as conn:
            projected = await lag.is_projected(conn, names, min_position)
        if projected:
            return
        if time.monotonic() + pause > deadline:
            raise ApiError(
                503,
                "read_model_lagging",
                f"The read side has not reached position {min_position} yet; retry shortly.",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)


async def read_position(pool: AsyncConnectionPool[Any], store: str | None = None) -> int:
    """How far the read side has got for `store` (every store when None)."""
    async with pool.connection() as conn:
        return await lag.read_position(conn, projector_names(), store)


@asynccontextmanager
async def reading(
    pool: AsyncConnectionPool[Any], min_position: int | None, store: str | None = None
) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], dict[str, str]]]:
    """Wait for `min_position`, then one connection for the position and the query.

    One checkout per query rather than one for the position and one for the rows: each
    checkout costs the pool's check. The position is read first, so the rows are at
    least as fresh as the header says. The connection is in autocommit while it reads:
    under READ COMMITTED every statement takes its own snapshot inside a transaction
    too, so BEGIN and COMMIT would only cost two round trips.
    """
    await wait_for(pool, min_position)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            position = await lag.read_position(conn, projector_names(), store)
            yield conn, {READ_POSITION_HEADER: str(position)}
        finally:
            # Other users of the pool expect transactions. A connection left ACTIVE (a
            # cancelled query) or UNKNOWN (a broken socket) is one the pool discards.
            if conn.info.transaction_status in (
                TransactionStatus.INTRANS,
                TransactionStatus.INERROR,
            ):
                await conn.rollback()  # an explicit transaction a handler left open
            if conn.info.transaction_status == TransactionStatus.IDLE:
                await conn.set_autocommit(False)


async def prepare(
    pool: AsyncConnectionPool[Any],
    min_position: int | None,
    store: str | None = None,
    *,
    projected: bool = True,
) -> dict[str, str]:
    """Wait for `min_position`, then the headers every query response carries. A read of
    the events copy itself (the history) passes `projected=False`: it waits for the
    replication of the event, never for a projector, which a stalled store's may never,
    and its `X-Read-Position` is how far the copy reaches."""
    await wait_for(pool, min_position, projected=projected)
    if not projected:
        async with pool.connection() as conn:
            return {READ_POSITION_HEADER: str(await history.copied_position(conn))}
    return {READ_POSITION_HEADER: str(await read_position(pool, store))}
