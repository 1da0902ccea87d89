"""Appending to and reading from the event store on the primary."""

# An append runs inside the caller's transaction (a command's transaction also records
# the idempotency key and the response in it, see transaction.py), so either every stream
# of a command gets its events and its new state, or none does.

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from inventory.eventstore import heads
from inventory.eventstore.append import appending
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import Recorded, StoredEvent, StreamHead, StreamWrite
from inventory.eventstore.script import Rows, Script, Statement
from inventory.eventstore.transaction import DURABLE, EARLY_RELEASE, Transaction

Connection = psycopg.AsyncConnection[Any]
S = TypeVar("S")

READ_STREAM = (
    "SELECT position, stream, version, type, store, sku, data::text, metadata,"
    " occurred_at, recorded_at FROM events"
    " WHERE stream = %s AND version >= %s ORDER BY version"
)


class EventStore:
    """Append and read on the primary; one instance per process, sharing a codec."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    def transaction(self, conn: Connection) -> Transaction:
        """A command's transaction on `conn`: `async with store.transaction(conn) as tx`."""
        return Transaction(conn, self.codec)

    async def lock(self, conn: Connection, streams: Iterable[str]) -> dict[str, StreamHead]:
        """Lock `streams` until the transaction ends and return their heads."""
        [(query, params)] = heads.lock_statements(streams, ())
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(query, params)
            return heads.heads(await cur.fetchall())

    async def document(self, conn: Connection, stream: str) -> StreamHead | None:
        """A stream's head read without a lock, or None when it does not exist."""
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(heads.READ_HEAD, (stream,))
            return heads.head(await cur.fetchall())

    async def append(
        self,
        conn: Connection,
        writes: Sequence[StreamWrite],
        metadata: Mapping[str, Any] | None = None,
        *,
        locked: Mapping[str, StreamHead] | None = None,
    ) -> list[Recorded]:
        """Append every write atomically; raise WrongExpectedVersion and append nothing
        when any stream is not at its expected version.

        One statement, atomic on its own; inside a transaction it joins it. `locked`
        passes the heads of an earlier `lock` in the same transaction: versions are
        checked against them before the round trip, and locked streams the command did
        not write lose their placeholder rows.
        """
        statement = appending(self.codec, writes, metadata, locked=locked)
        try:
            if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
                rows = await _append_alone(conn, statement.statement)
            else:
                async with conn.cursor(row_factory=tuple_row) as cur:
                    await cur.execute(*statement.statement)
                    rows = await cur.fetchall()
        except psycopg.Error as error:
            failure = statement.failure(error)
            if failure is error:
                raise
            raise failure from error
        return statement.recorded(rows)

    async def read_stream(
        self, conn: Connection, stream: str, from_version: int = 1
    ) -> list[StoredEvent]:
        """The stream's events from `from_version` on, in version order, decoded."""
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(READ_STREAM, (stream, from_version))
            rows = await cur.fetchall()
        return [
            StoredEvent(
                position=r[0],
                stream=r[1],
                version=r[2],
                type=r[3],
                store=r[4],
                sku=r[5],
                event=self.codec.decode(r[3], r[6]),
                metadata=r[7],
                occurred_at=r[8],
                recorded_at=r[9],
            )
            for r in rows
        ]

    async def fold(
        self,
        conn: Connection,
        stream: str,
        evolve: Callable[[S, msgspec.Struct], S],
        initial: S,
    ) -> tuple[S, int]:
        """The stream's state rebuilt from its events, and its version."""
        state, version = initial, 0
        for stored in await self.read_stream(conn, stream):
            state, version = evolve(state, stored.event), stored.version
        return state, version


async def _append_alone(conn: Connection, statement: Statement) -> Rows:
    """An append that is a transaction of its own, sent the way a command's is: its locks
    (the streams', the store's chain) released before its WAL flush, answered after it
    (transaction.py, early lock release), in one round trip."""
    script = Script(conn)
    script.later("BEGIN")
    script.later(EARLY_RELEASE)
    script.ask("append", statement)
    script.later("COMMIT")
    script.later(DURABLE)
    try:
        return (await script.send())["append"]
    except psycopg.Error:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.execute("ROLLBACK")
        raise
