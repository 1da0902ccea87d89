"""Is a keyed write a replay? The idempotency record says, before the command runs."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

FIND = "SELECT 1 FROM idempotency WHERE principal = %s AND key = %s"


async def stored(pool: AsyncConnectionPool, principal: str, key: str) -> bool:
    """True when a response is stored under (`principal`, `key`)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(FIND, (principal, key))
        return await cursor.fetchone() is not None
