"""The baseline bench/commands.py measures sales against: one INSERT per request.

uvicorn --app-dir bench commands_app:create --factory   (BENCH_PRIMARY_URL names the primary)

It decodes the same JSON body a sale carries and inserts it, in autocommit, on a pool
as large as the API's: the least a durable write over HTTP costs on this primary.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
from litestar import Litestar, Response, post
from litestar.datastructures import State
from psycopg_pool import AsyncConnectionPool

TABLE = "CREATE TABLE IF NOT EXISTS bench_inserts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body jsonb NOT NULL)"  # noqa: E501 - one statement
INSERT = "INSERT INTO bench_inserts (body) VALUES (%s::jsonb)"


class Line(msgspec.Struct, forbid_unknown_fields=True):
    """A sale line, as the API reads it."""

    sku: str
    quantity: int


class Sale(msgspec.Struct, forbid_unknown_fields=True):
    """A sale body, as the API reads it."""

    sale_id: str
    lines: list[Line]


_encode = msgspec.json.Encoder().encode


@post("/bench/insert")
async def insert(state: State, data: Sale) -> Response[bytes]:
    """Insert the body; 201 like a command."""
    pool: AsyncConnectionPool = state.pool
    async with pool.connection() as conn:
        await conn.execute(INSERT, (_encode(data).decode(),))
    return Response(b'{"ok":true}', status_code=201, media_type="application/json")


def create() -> Litestar:
    """The minimal app."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            os.environ["BENCH_PRIMARY_URL"],
            min_size=2,
            max_size=int(os.environ.get("INVENTORY_POOL_MAX_SIZE", "20")),
            kwargs={"autocommit": True},
            open=False,
        )
        await pool.open(wait=True)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    return Litestar([insert], lifespan=[lifespan], debug=False)
