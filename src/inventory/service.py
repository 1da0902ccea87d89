"""handle(command): lock streams → decide → append, in one transaction on the primary.

One transaction per command holds everything that must happen exactly once: the
idempotency record, the stream locks, the events, the streams' new states and the stored
response. The projectors are woken after it commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import msgspec
import psycopg
import structlog
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import Command
from inventory.domain.context import Change, Context, Head, StreamNotInContext
from inventory.domain.decider import decide, document_stream, streams_of
from inventory.domain.errors import CommandRejected, VersionConflict
from inventory.domain.events import ALL_EVENTS, Event
from inventory.domain.state import ProductState, TransferState, decode_state, level_of
from inventory.domain.streams import kind_of, product_stream, stock_stream, transfer_stream
from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import WrongExpectedVersion
from inventory.eventstore.store import EventStore, NewEvent, Recorded, StreamHead, StreamWrite

log = structlog.get_logger(__name__)

RETRIES = 5
"""How often a command is rerun after a deadlock, a serialization failure or a document
that appeared between its unlocked read and its lock."""

# Read streams are locked FOR SHARE: many sales of one store hold its row together, and a
# period close (which writes it) waits for them, and they for it. Sorted like every lock.
READ_SHARED = (
    "SELECT stream, version, state::text FROM streams"
    " WHERE stream = ANY(%s::text[]) ORDER BY stream FOR SHARE"
)
READ_DOCUMENT = "SELECT version, state::text FROM streams WHERE stream = %s"
# Concurrent requests with one key queue here; the second then finds the first's response.
# hashtextextended collisions only make two unrelated keys wait for each other.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
FIND_RESPONSE = (
    "SELECT fingerprint, status, response FROM idempotency WHERE principal = %s AND key = %s"
)
STORE_RESPONSE = (
    "INSERT INTO idempotency (principal, key, fingerprint, status, response)"
    " VALUES (%s, %s, %s, %s, %s)"
)


class IdempotencyKeyReused(Exception):
    """The key was first used with another request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Actor:
    """Who sends a command, as every event's metadata names them."""

    id: str
    kind: str
    name: str
    role: str
    ip: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass(frozen=True)
class Idempotency:
    """A client's key and the fingerprint of the request it came with."""

    key: str
    fingerprint: bytes

    @classmethod
    def of(cls, key: str, *parts: bytes | str) -> Idempotency:
        """The key with a sha256 fingerprint of the request's parts (method, path, body)."""
        digest = hashlib.sha256()
        for part in parts:
            chunk = part.encode() if isinstance(part, str) else part
            digest.update(len(chunk).to_bytes(8, "big") + chunk)
        return cls(key, digest.digest())


class LevelView(msgspec.Struct, frozen=True):
    """One item's quantities after the command, with the stock stream's version."""

    store: str
    sku: str
    on_hand: int | str
    reserved: int | str
    available: int | str
    in_transit_in: int | str
    in_transit_out: int | str
    version: int


class EventView(msgspec.Struct, frozen=True):
    """Where one appended event landed."""

    position: int
    stream: str
    version: int
    type: str


class CommandResult(msgspec.Struct, frozen=True):
    """What a command did: the api.md command result."""

    command_id: str
    position: int | None
    events: list[EventView]
    levels: list[LevelView]


@dataclass(frozen=True)
class Decision:
    """An accepted command: its result and every touched stream's state afterwards."""

    result: CommandResult
    after: Context
    partitions: frozenset[str | None]
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The response to send: the first one again when `replayed`."""

    status: int
    body: bytes
    replayed: bool = False
    decision: Decision | None = None


class Responder(Protocol):
    """Renders the response the service stores for replays (the API's business)."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """Status and body for an accepted command."""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        """Status and body for a refused one."""


@dataclass
class CommandService:
    """Runs commands against the event store on the primary."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    after_commit: Callable[[Decision], None] | None = None
    """Runs (in a thread) after each accepted command commits: wake-ups, expiry timers."""
    store: EventStore = field(default_factory=lambda: EventStore(Codec(ALL_EVENTS)))

    async def transfer_stores(self, transfer_id: str) -> tuple[str, str] | None:
        """A transfer's source and destination, or None when it does not exist."""
        stream = transfer_stream(transfer_id)
        async with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(READ_DOCUMENT, (stream,))
            row = await cur.fetchone()
        state = decode_state(stream, row[1] if row else None)
        if not isinstance(state, TransferState) or not state.exists:
            return None
        return state.from_store, state.to_store

    async def handle(
        self,
        command: Command,
        actor: Actor,
        responder: Responder,
        idempotency: Idempotency | None = None,
    ) -> Outcome:
        """Decide and append `command` exactly once; raises IdempotencyKeyReused, and
        CommandRejected when there is no idempotency key to store the refusal under."""
        for attempt in range(1, RETRIES + 1):
            try:
                outcome = await self._attempt(command, actor, responder, idempotency)
            except (StreamNotInContext, psycopg.errors.DeadlockDetected) as error:
                if attempt == RETRIES:
                    raise
                log.info("command rerun", attempt=attempt, reason=type(error).__name__)
                continue
            if outcome.decision is not None and self.after_commit is not None:
                await asyncio.to_thread(self.after_commit, outcome.decision)
            return outcome
        raise AssertionError("unreachable")

    async def _attempt(
        self,
        command: Command,
        actor: Actor,
        responder: Responder,
        idempotency: Idempotency | None,
    ) -> Outcome:
        async with self.pool.connection() as conn, conn.transaction():
            if idempotency is not None:
                replay = await _replay(conn, actor.id, idempotency)
                if replay is not None:
                    return replay
            try:
                # A savepoint: a refusal is stored without what was locked or written.
                async with conn.transaction():
                    decision = await self._decide_and_append(conn, command, actor, idempotency)
            except CommandRejected as error:
                if idempotency is None:
                    raise
                status, body = responder.rejected(error)
                await _store(conn, actor.id, idempotency, status, body)
                return Outcome(status, body)
            status, body = responder.accepted(decision)
            if idempotency is not None:
                await _store(conn, actor.id, idempotency, status, body)
            return Outcome(status, body, decision=decision)

    async def _decide_and_append(
        self,
        conn: psycopg.AsyncConnection[Any],
        command: Command,
        actor: Actor,
        idempotency: Idempotency | None,
    ) -> Decision:
        document = await _read_document(conn, command)
        streams = streams_of(command, document)
        heads = await self.store.lock(conn, streams.write)
        shared = await _lock_shared(conn, streams.read - streams.write)
        context = _context(heads, shared, streams.all)
        changes = decide(command, context)
        after = context.advanced(changes)
        command_id = str(uuid.uuid4())
        writes = _writes(changes, context, after)
        try:
            recorded = await self.store.append(
                conn, writes, _metadata(actor, command_id, idempotency), locked=heads
            )
        except WrongExpectedVersion as error:
            raise VersionConflict(
                f"stream {error.stream} is at version {error.current}, not {error.expected}",
                [
                    {
                        "stream": error.stream,
                        "expected_version": error.expected,
                        "current_version": error.current,
                    }
                ],
            ) from None
        partitions = frozenset(change.store for change in changes)
        result = _result(command_id, recorded, changes, after)
        return Decision(result, after, partitions, tuple(change.event for change in changes))


async def _replay(
    conn: psycopg.AsyncConnection[Any], principal: str, idempotency: Idempotency
) -> Outcome | None:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(LOCK_KEY, (f"{len(principal)}:{principal}:{idempotency.key}",))
        await cur.execute(FIND_RESPONSE, (principal, idempotency.key))
        row = await cur.fetchone()
    if row is None:
        return None
    fingerprint, status, body = row
    if bytes(fingerprint) != idempotency.fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {idempotency.key!r} was first used with another request"
        )
    return Outcome(status, bytes(body), replayed=True)


async def _store(
    conn: psycopg.AsyncConnection[Any],
    principal: str,
    idempotency: Idempotency,
    status: int,
    body: bytes,
) -> None:
    await conn.execute(
        STORE_RESPONSE, (principal, idempotency.key, idempotency.fingerprint, status, body)
    )


async def _read_document(conn: psycopg.AsyncConnection[Any], command: Command) -> Any:
    stream = document_stream(command)
    if stream is None:
        return None
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(READ_DOCUMENT, (stream,))
        row = await cur.fetchone()
    return decode_state(stream, row[1] if row else None)


async def _lock_shared(
    conn: psycopg.AsyncConnection[Any], streams: Iterable[str]
) -> dict[str, StreamHead]:
    names = sorted(streams)
    if not names:
        return {}
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(READ_SHARED, (names,))
        rows = await cur.fetchall()
    return {
        name: StreamHead(version, state.encode() if state is not None else None)
        for name, version, state in rows
    }


def _context(
    locked: Mapping[str, StreamHead], shared: Mapping[str, StreamHead], streams: Iterable[str]
) -> Context:
    heads = {}
    for stream in streams:
        head = locked.get(stream) or shared.get(stream) or StreamHead(0, None)
        heads[stream] = Head(head.version, decode_state(stream, head.state))
    return Context(heads)


def _writes(changes: Sequence[Change], before: Context, after: Context) -> list[StreamWrite]:
    grouped: dict[str, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.stream, []).append(change)
    writes = []
    for stream, own in grouped.items():
        expected = next(
            (c.expected_version for c in own if c.expected_version is not None),
            before.version(stream),
        )
        events = [NewEvent(c.event, c.store, c.sku, c.occurred_at) for c in own]
        writes.append(StreamWrite(stream, events, expected, after.head(stream).state))
    return writes


def _metadata(actor: Actor, command_id: str, idempotency: Idempotency | None) -> dict[str, Any]:
    return {
        "actor": {"id": actor.id, "kind": actor.kind, "name": actor.name, "role": actor.role},
        "command_id": command_id,
        "idempotency_key": idempotency.key if idempotency else None,
        "correlation_id": actor.correlation_id or actor.request_id,
        "causation_id": actor.causation_id,
        "request_id": actor.request_id,
        "ip": actor.ip,
    }


def _result(
    command_id: str, recorded: Sequence[Recorded], changes: Sequence[Change], after: Context
) -> CommandResult:
    events = [EventView(r.position, r.stream, r.version, r.type) for r in recorded]
    items = {
        change.stream: (change.store, change.sku)
        for change in changes
        if kind_of(change.stream) == "stock" and change.store and change.sku
    }
    levels = [_level(store, sku, after) for store, sku in items.values()]
    levels.sort(key=lambda level: (level.store, level.sku))
    position = max((r.position for r in recorded), default=None)
    return CommandResult(command_id, position, events, levels)


def _level(store: str, sku: str, after: Context) -> LevelView:
    stock = after.stock(store, sku)
    product = after.heads.get(product_stream(sku))
    decimals = product.state.decimals if product and isinstance(product.state, ProductState) else 0
    level = level_of(stock)
    return LevelView(
        store=store,
        sku=sku,
        on_hand=show_quantity(level.on_hand, decimals),
        reserved=show_quantity(level.reserved, decimals),
        available=show_quantity(level.available, decimals),
        in_transit_in=show_quantity(level.in_transit_in, decimals),
        in_transit_out=show_quantity(level.in_transit_out, decimals),
        version=after.version(stock_stream(store, sku)),
    )


def show_quantity(value: Decimal, decimals: int) -> int | str:
    """api.md: quantities are integers for whole-unit products, strings otherwise."""
    if decimals == 0:
        return int(value)
    return str(value.quantize(Decimal(1).scaleb(-decimals)))
