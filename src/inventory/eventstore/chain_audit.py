"""Recompute each store's hash chain from the primary's events and name the first break."""

# The walk goes by position within a store: migrations/0081 takes a store's positions
# under its chain row's lock, so position order within a store is chain order (and the
# replica's seq order). Rows come from a server-side cursor: memory stays flat.

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.eventstore.chain import ZERO, Fields, encoding, link

ROWS = (
    "SELECT position, id, stream, version, type, store, sku, occurred_at, recorded_at,"
    " data::text, metadata::text, chain FROM events WHERE {where} ORDER BY position"
)
STORE_WHERE = "store = %s"
NO_STORE_WHERE = "store IS NULL AND %s = ''"
LAST = "SELECT position, chain FROM events WHERE {where} ORDER BY position DESC LIMIT 1"
# Each store once, by skipping through the (store, position) index, and '' when any
# event belongs to no store.
STORES = """
WITH RECURSIVE found AS (
    (SELECT store FROM events WHERE store IS NOT NULL ORDER BY store LIMIT 1)
    UNION ALL
    SELECT (SELECT e.store FROM events AS e WHERE e.store > found.store
            ORDER BY e.store LIMIT 1)
    FROM found WHERE found.store IS NOT NULL
)
SELECT '' WHERE EXISTS (SELECT 1 FROM events WHERE store IS NULL)
UNION ALL
SELECT store FROM found WHERE store IS NOT NULL
"""
BATCH = 5_000


def _where(store: str) -> str:
    return NO_STORE_WHERE if store == "" else STORE_WHERE


def rows_query(store: str) -> str:
    """The events of one chain ('' = the events of no store) in chain order."""
    return ROWS.format(where=_where(store))


@dataclass(frozen=True, slots=True)
class Break:
    """The first event whose stored chain is not the one recomputed."""

    position: int
    id: str
    stream: str
    version: int
    type: str
    stored: str
    expected: str

    def describe(self) -> str:
        """One line for a report."""
        return (
            f"position {self.position} ({self.stream} v{self.version}, {self.type}, id {self.id}):"
            f" stored chain {self.stored[:16]}... but recomputed {self.expected[:16]}...:"
            " this event, or the one before it in its store, was edited, removed or moved"
        )


@dataclass(slots=True)
class Walk:
    """One store's chain walked event by event."""

    store: str
    events: int = 0
    head: str = ZERO
    last_position: int | None = None
    first_break: Break | None = None
    problems: list[str] = field(default_factory=list)

    def take(self, row: tuple[Any, ...]) -> bool:
        """Check one row (ROWS' columns); False once the chain broke (stop reading)."""
        position, stored = row[0], row[11]
        event = Fields(*row[1:11])
        expected = link(self.head, encoding(event))
        self.events += 1
        self.last_position = position
        if stored != expected:
            self.first_break = Break(
                position,
                str(event.id),
                event.stream,
                event.version,
                event.type,
                str(stored),
                expected,
            )
            self.problems.append(self.first_break.describe())
            return False
        self.head = stored
        return True

    @property
    def ok(self) -> bool:
        """Whether every link held (a removed last event breaks none: the signed
        checkpoint and the replica's copy find that)."""
        return not self.problems


def walk_rows(store: str, batches: Iterable[list[tuple[Any, ...]]]) -> Walk:
    """Walk one store's rows (in chain order) until the first break."""
    walk = Walk(store)
    for rows in batches:
        if not all(walk.take(row) for row in rows):
            break
    return walk


def verify_store(conn: psycopg.Connection[Any], store: str) -> Walk:
    """Recompute one store's chain on the primary ('' = the events of no store)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor("chain_walk", row_factory=tuple_row) as cur:
            cur.itersize = BATCH
            cur.execute(rows_query(store), (store,))
            walk = walk_rows(store, _batches(cur))
    return walk


def _batches(cur: psycopg.Cursor[Any]) -> Iterator[list[tuple[Any, ...]]]:
    while rows := cur.fetchmany(BATCH):
        yield rows


async def verify_store_async(conn: psycopg.AsyncConnection[Any], store: str) -> Walk:
    """`verify_store` on an async connection (the API's primary pool)."""
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        async with conn.cursor("chain_walk", row_factory=tuple_row) as cur:
            await cur.execute(rows_query(store), (store,))
            walk = Walk(store)
            async for rows in _async_batches(cur):
                if not all(walk.take(row) for row in rows):
                    break
    return walk


async def _async_batches(cur: psycopg.AsyncCursor[Any]) -> AsyncIterator[list[tuple[Any, ...]]]:
    while rows := await cur.fetchmany(BATCH):
        yield rows


def chain_stores(conn: psycopg.Connection[Any]) -> list[str]:
    """Every chain: each store with an event, and '' when an event has no store."""
    return [str(row[0]) for row in conn.execute(STORES).fetchall()]


def chain_heads(conn: psycopg.Connection[Any]) -> list[tuple[str, int, str]]:
    """Each chain's head, its last event: (store, position, chain), in one snapshot."""
    heads = []
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for store in chain_stores(conn):
            row = conn.execute(LAST.format(where=_where(store)), (store,)).fetchone()
            if row is not None:
                heads.append((store, int(row[0]), str(row[1])))
    return heads


CHAIN_AT = "SELECT chain FROM events WHERE position = %s AND coalesce(store, '') = %s"


def chain_at(conn: psycopg.Connection[Any], store: str, position: int) -> str | None:
    """The stored chain of a store's event at `position`; None when there is none."""
    row = conn.execute(CHAIN_AT, (position, store)).fetchone()
    return None if row is None else str(row[0])


async def chain_at_async(
    conn: psycopg.AsyncConnection[Any], store: str, position: int
) -> str | None:
    """`chain_at` on an async connection."""
    row = await (await conn.execute(CHAIN_AT, (position, store))).fetchone()
    return None if row is None else str(row[0])
