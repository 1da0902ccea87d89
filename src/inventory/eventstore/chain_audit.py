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
HEADS = "SELECT store, head, events, position FROM event_chains ORDER BY store"
HEAD = "SELECT head, events, position FROM event_chains WHERE store = %s"
STORES = (
    "SELECT store FROM event_chains UNION"
    " SELECT DISTINCT coalesce(store, '') FROM events ORDER BY 1"
)
BATCH = 5_000


def rows_query(store: str) -> str:
    """The events of one chain ('' = the events of no store) in chain order."""
    return ROWS.format(where=NO_STORE_WHERE if store == "" else STORE_WHERE)


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
    recorded: tuple[str, int, int | None] | None = None
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

    def compare_head(self, recorded: tuple[str, int, int | None] | None) -> None:
        """After a whole walk: the head append_events recorded must be where the walk ended
        (a removed last event leaves every link before it intact)."""
        self.recorded = recorded
        if self.first_break is not None:
            return
        if recorded is None:
            if self.events:
                self.problems.append("events but no recorded chain head (event_chains)")
            return
        head, events, position = recorded
        if (head, events, position) != (self.head, self.events, self.last_position):
            self.problems.append(
                f"the recorded head says {events} events ending at position {position}"
                f" ({head[:16]}...), the history has {self.events} ending at position"
                f" {self.last_position} ({self.head[:16]}...): events at the end were"
                " removed or added past append_events"
            )

    @property
    def ok(self) -> bool:
        """Whether the chain held from the first event to the recorded head."""
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
        walk.compare_head(_recorded(conn.execute(HEAD, (store,)).fetchone()))
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
        found = await (await conn.execute(HEAD, (store,))).fetchone()
        walk.compare_head(_recorded(found))
    return walk


async def _async_batches(cur: psycopg.AsyncCursor[Any]) -> AsyncIterator[list[tuple[Any, ...]]]:
    while rows := await cur.fetchmany(BATCH):
        yield rows


def _recorded(row: tuple[Any, ...] | None) -> tuple[str, int, int | None] | None:
    return None if row is None else (str(row[0]), int(row[1]), row[2])


def chain_stores(conn: psycopg.Connection[Any]) -> list[str]:
    """Every chain: the stores with a recorded head or an event, '' for no store."""
    return [str(row[0]) for row in conn.execute(STORES).fetchall()]


def chain_heads(conn: psycopg.Connection[Any]) -> list[tuple[str, str, int, int | None]]:
    """Each chain's recorded head: (store, head, events, position)."""
    return [(str(s), str(h), int(n), p) for s, h, n, p in conn.execute(HEADS).fetchall()]


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
