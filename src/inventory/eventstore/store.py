"""Appending to and reading from the event store on the primary.

An append runs inside the caller's transaction (the command service also records the
idempotency key and the response in it), so either every stream of a command gets its
events and its new state, or none does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg.rows import tuple_row

from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import DuplicateEvent, WrongExpectedVersion

ANY = -1
"""Expected version: append whatever the stream's version."""
NO_STREAM = 0
"""Expected version: the stream must not exist yet."""

Connection = psycopg.AsyncConnection[Any]
S = TypeVar("S")


@dataclass(frozen=True)
class NewEvent:
    """An event to append, with its partition key and business time."""

    event: msgspec.Struct
    store: str | None = None
    sku: str | None = None
    occurred_at: datetime | None = None  # default: now
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class StreamWrite:
    """Events for one stream, the version it must be at, and its state after them."""

    stream: str
    events: Sequence[NewEvent]
    expected_version: int = ANY
    state: msgspec.Struct | None = None


@dataclass(frozen=True)
class StreamHead:
    """A locked stream's current version (0: no stream) and its stored state as JSON."""

    version: int
    state: bytes | None


@dataclass(frozen=True)
class Recorded:
    """Where an appended event landed."""

    id: uuid.UUID
    position: int
    stream: str
    version: int
    type: str


@dataclass(frozen=True)
class StoredEvent:
    """An event read back from a stream."""

    position: int
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    event: msgspec.Struct
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime


# Locks every stream of a command in one statement, in sorted order, so two commands
# touching the same streams queue instead of deadlocking. A missing stream gets a
# placeholder row at version 0, locked like any other: two commands creating the same
# stream serialize on it too. `DO UPDATE ... WHERE false` locks an existing row without
# writing a new row version (PostgreSQL locks every conflicting row it considers).
LOCK = """
INSERT INTO streams (stream, version)
SELECT stream, 0 FROM unnest(%s::text[]) AS stream
ON CONFLICT (stream) DO UPDATE SET version = streams.version WHERE false
"""
# A new statement, hence a new snapshot: it sees what committed while we waited.
HEADS = "SELECT stream, version, state::text FROM streams WHERE stream = ANY(%s::text[])"

INSERT = """
INSERT INTO events (id, stream, version, type, store, sku, data, metadata, occurred_at)
SELECT e.id, e.stream, e.version, e.type, e.store, e.sku, e.data::jsonb, %s::jsonb,
       coalesce(e.occurred_at, now())
FROM unnest(%s::uuid[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::timestamptz[])
     AS e(id, stream, version, type, store, sku, data, occurred_at)
RETURNING id, position
"""

UPDATE_HEADS = """
UPDATE streams SET version = h.version, state = h.state::jsonb, updated_at = now()
FROM unnest(%s::text[], %s::bigint[], %s::text[]) AS h(stream, version, state)
WHERE streams.stream = h.stream
"""

DROP_PLACEHOLDERS = "DELETE FROM streams WHERE stream = ANY(%s::text[]) AND version = 0"


class EventStore:
    """Append and read on the primary; one instance per process, sharing a codec."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._json = msgspec.json.Encoder()

    async def lock(self, conn: Connection, streams: Iterable[str]) -> dict[str, StreamHead]:
        """Lock `streams` until the transaction ends and return their heads."""
        names = sorted(set(streams))
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(LOCK, (names,))
            await cur.execute(HEADS, (names,))
            rows = await cur.fetchall()
        return {
            name: StreamHead(version, state.encode() if state is not None else None)
            for name, version, state in rows
        }

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

        Must run inside a transaction. `locked` passes the heads of an earlier `lock`
        in the same transaction (the command service decides between the two).
        """
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            raise RuntimeError("append must run inside a transaction")
        if locked is None:
            locked = await self.lock(conn, (write.stream for write in writes))
        rows = self._rows(writes, locked)
        recorded = await self._insert(conn, rows, metadata or {})
        await self._update_heads(conn, writes, locked)
        return recorded

    def _rows(
        self, writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead]
    ) -> list[tuple[Any, ...]]:
        rows = []
        for write in sorted(writes, key=lambda w: w.stream):
            head = locked.get(write.stream)
            if head is None:
                raise RuntimeError(f"stream {write.stream!r} was not locked")
            expected = write.expected_version
            if expected not in (ANY, head.version):
                raise WrongExpectedVersion(write.stream, expected, head.version)
            for offset, new in enumerate(write.events, start=1):
                tag, data = self.codec.encode(new.event)
                rows.append(
                    (
                        new.id,
                        write.stream,
                        head.version + offset,
                        tag,
                        new.store,
                        new.sku,
                        data.decode(),
                        new.occurred_at,
                    )
                )
        return rows

    async def _insert(
        self, conn: Connection, rows: list[tuple[Any, ...]], metadata: Mapping[str, Any]
    ) -> list[Recorded]:
        if not rows:
            return []
        columns = [list(column) for column in zip(*rows, strict=True)]
        try:
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(INSERT, (self._json.encode(metadata).decode(), *columns))
                positions: dict[uuid.UUID, int] = dict(await cur.fetchall())
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateEvent(str(error).splitlines()[0]) from error
        return [
            Recorded(
                id=row[0], position=positions[row[0]], stream=row[1], version=row[2], type=row[3]
            )
            for row in rows
        ]

    async def _update_heads(
        self, conn: Connection, writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead]
    ) -> None:
        names, versions, states = [], [], []
        for write in writes:
            if not write.events and write.state is None:
                continue
            names.append(write.stream)
            versions.append(locked[write.stream].version + len(write.events))
            states.append(None if write.state is None else self._json.encode(write.state).decode())
        async with conn.cursor() as cur:
            if names:
                await cur.execute(UPDATE_HEADS, (names, versions, states))
            unused = [
                name for name, head in locked.items() if head.version == 0 and name not in names
            ]
            if unused:
                await cur.execute(DROP_PLACEHOLDERS, (unused,))

    async def read_stream(
        self, conn: Connection, stream: str, from_version: int = 1
    ) -> list[StoredEvent]:
        """The stream's events from `from_version` on, in version order, decoded."""
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(
                "SELECT position, stream, version, type, store, sku, data::text, metadata,"
                " occurred_at, recorded_at FROM events"
                " WHERE stream = %s AND version >= %s ORDER BY version",
                (stream, from_version),
            )
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
