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
from inventory.eventstore.script import Rows, Script, Statement

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


# migrations/0007_append_events.sql: lock in sorted order and read, in one round trip.
LOCK = "SELECT stream, version, state::text FROM lock_streams(%s::text[])"
# Streams a command only reads are locked FOR SHARE: many sales of one store hold its row
# together, and a period close (which writes it) waits for them, and they for it.
SHARE = (
    "SELECT stream, version, state::text FROM streams"
    " WHERE stream = ANY(%s::text[]) ORDER BY stream FOR SHARE"
)
# migrations/0007_append_events.sql (0010: by key): lock, check, insert and update in one
# round trip.
APPEND = "SELECT id, position, stream, version FROM append_events(%s::jsonb, %s::jsonb)"
WRONG_EXPECTED_VERSION = "IV409"  # the SQLSTATE append_events raises


class _EventDocument(msgspec.Struct, omit_defaults=True):
    """One event as append_events reads it."""

    id: uuid.UUID
    type: str
    data: msgspec.Raw
    store: str | None = None
    sku: str | None = None
    occurred_at: datetime | None = None


class _WriteDocument(msgspec.Struct, omit_defaults=True):
    """One write as append_events reads it; no `state` key keeps the stored state."""

    stream: str
    expected: int
    events: list[_EventDocument]
    state: msgspec.Struct | None = None


def _check_expected(writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead]) -> None:
    for write in writes:
        head = locked.get(write.stream)
        if head is None:
            raise RuntimeError(f"stream {write.stream!r} was not locked")
        if write.expected_version not in (ANY, head.version):
            raise WrongExpectedVersion(write.stream, write.expected_version, head.version)


def _heads(rows: Iterable[Any]) -> dict[str, StreamHead]:
    return {
        name: StreamHead(version, state.encode() if state is not None else None)
        for name, version, state in rows
    }


def _landing(
    writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead] | None
) -> list[tuple[uuid.UUID, str, int]] | None:
    """Each new event's id, stream and version, in the order append_events inserts them
    (writes, then events), when every base version is known: locked, or expected."""
    landing: list[tuple[uuid.UUID, str, int]] = []
    for write in writes:
        head = locked.get(write.stream) if locked is not None else None
        base = head.version if head is not None else write.expected_version
        if base == ANY:
            return None
        landing.extend(
            (new.id, write.stream, base + place) for place, new in enumerate(write.events, 1)
        )
    return landing


@dataclass(frozen=True)
class Appending:
    """An append as one statement, for a caller that sends it with others in a round trip
    (the command service: append, response and COMMIT together)."""

    statement: Statement
    kinds: Mapping[uuid.UUID, str]
    """Each new event's type tag, by id."""
    landing: list[tuple[uuid.UUID, str, int]] | None
    """Each new event's id, stream and version, in insertion order, when known before
    the round trip (every base version locked or expected): only positions are not."""

    def recorded(self, rows: Iterable[Any]) -> list[Recorded]:
        """Where each event landed, from the statement's rows, in position order."""
        return [
            Recorded(
                id=id_, position=position, stream=stream, version=version, type=self.kinds[id_]
            )
            for id_, position, stream, version in rows
        ]

    def expected(self) -> list[Recorded]:
        """Where each event will land, positions 0, in insertion order (which the
        statement's position order follows); requires `landing`."""
        if self.landing is None:
            raise ValueError("the base versions are not all known before the append")
        return [
            Recorded(id=id_, position=0, stream=stream, version=version, type=self.kinds[id_])
            for id_, stream, version in self.landing
        ]

    def failure(self, error: psycopg.Error) -> Exception:
        """What a failed send of the statement means: WrongExpectedVersion, DuplicateEvent,
        or the error itself."""
        if isinstance(error, psycopg.errors.UniqueViolation):
            return DuplicateEvent(str(error).splitlines()[0])
        if error.sqlstate == WRONG_EXPECTED_VERSION and error.diag.message_detail:
            stream, expected, current = error.diag.message_detail.split("\t")
            return WrongExpectedVersion(stream, int(expected), int(current))
        return error


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
            return _heads(await cur.fetchall())

    def lock_statements(self, write: Iterable[str], read: Iterable[str]) -> list[Statement]:
        """Lock `write` exclusively, then the rest of `read` FOR SHARE, each in sorted
        order (to send with a Script; `heads_of` reads their rows)."""
        names = sorted(set(write))
        shared = sorted(set(read) - set(names))
        statements: list[Statement] = [(LOCK, (names,))]
        if shared:
            statements.append((SHARE, (shared,)))
        return statements

    def heads_of(self, sets: Sequence[Rows]) -> tuple[dict[str, StreamHead], dict[str, StreamHead]]:
        """The locked and the shared heads from the rows of `lock_statements`."""
        return _heads(sets[0]), _heads(sets[1]) if len(sets) > 1 else {}

    async def lock_and_share(
        self, script: Script, write: Iterable[str], read: Iterable[str]
    ) -> tuple[dict[str, StreamHead], dict[str, StreamHead]]:
        """`lock_statements` sent with what `script` has queued: one round trip."""
        return self.heads_of(await script.rows(*self.lock_statements(write, read)))

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
        appending = self.appending(writes, metadata, locked=locked)
        try:
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(*appending.statement)
                rows = await cur.fetchall()
        except psycopg.Error as error:
            failure = appending.failure(error)
            if failure is error:
                raise
            raise failure from error
        return appending.recorded(rows)

    def appending(
        self,
        writes: Sequence[StreamWrite],
        metadata: Mapping[str, Any] | None = None,
        *,
        locked: Mapping[str, StreamHead] | None = None,
    ) -> Appending:
        """`append` as a statement to send with others (see Appending); `locked` as there."""
        if locked is not None:
            _check_expected(writes, locked)
            written = {write.stream for write in writes}
            writes = [
                *writes,
                *(StreamWrite(name, ()) for name in sorted(locked) if name not in written),
            ]
        arguments, kinds = self._arguments(writes, metadata or {})
        return Appending((APPEND, arguments), kinds, _landing(writes, locked))

    def _arguments(
        self, writes: Sequence[StreamWrite], metadata: Mapping[str, Any]
    ) -> tuple[tuple[str, str], dict[uuid.UUID, str]]:
        """append_events' two JSON arguments, and each new event's type tag by id."""
        if len({write.stream for write in writes}) != len(writes):
            raise ValueError("each stream may appear in one write only")
        kinds: dict[uuid.UUID, str] = {}
        documents = []
        for write in writes:
            events = []
            for new in write.events:
                tag, data = self.codec.encode(new.event)
                kinds[new.id] = tag
                events.append(
                    _EventDocument(
                        new.id, tag, msgspec.Raw(data), new.store, new.sku, new.occurred_at
                    )
                )
            documents.append(
                _WriteDocument(write.stream, write.expected_version, events, write.state)
            )
        encode = self._json.encode
        return (encode(documents).decode(), encode(metadata).decode()), kinds

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
