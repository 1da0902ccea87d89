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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import psycopg
import structlog
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from inventory.command_result import CommandResult, result_of, with_positions
from inventory.domain.availability import HistoryNeed, StockHistory
from inventory.domain.commands import Command
from inventory.domain.context import Change, Context, Head, StreamNotInContext
from inventory.domain.decider import decide, document_stream, streams_of
from inventory.domain.errors import CommandRejected, VersionConflict
from inventory.domain.events import ALL_EVENTS, Event, StockEvent
from inventory.domain.state import TransferState, decode_state
from inventory.domain.streams import transfer_stream
from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import WrongExpectedVersion
from inventory.eventstore.script import Rows, Script, Statement
from inventory.eventstore.store import EventStore, NewEvent, StreamHead, StreamWrite

log = structlog.get_logger(__name__)

RETRIES = 5
"""How often a command is rerun after a deadlock, a serialization failure or a document
that appeared between its unlocked read and its lock."""

READ_DOCUMENT = "SELECT version, state::text FROM streams WHERE stream = %s"
# Concurrent requests with one key queue here; the second then finds the first's response.
# hashtextextended collisions only make two unrelated keys wait for each other.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# A response stored before its events had positions (migrations/0011) gets them from the
# events it names, by stream and version, in its order.
FIND_RESPONSE = """
SELECT fingerprint, status, response, CASE WHEN fill_positions THEN ARRAY(
    SELECT ev.position
    FROM jsonb_array_elements(convert_from(response, 'UTF8')::jsonb -> 'events')
         WITH ORDINALITY AS named(event, place)
    JOIN events AS ev
      ON ev.stream = named.event ->> 'stream' AND ev.version = (named.event ->> 'version')::bigint
    ORDER BY named.place) END
FROM idempotency WHERE principal = %s AND key = %s"""
# A dated stock change's history (domain/availability.py): the events from the latest count
# at or before its time (all without one), or those dated after it, in business-time order.
HISTORY_FROM_COUNT = """
SELECT type, data::text FROM events
WHERE stream = %s AND occurred_at >= COALESCE((
    SELECT max(occurred_at) FROM events
    WHERE stream = %s AND type = 'stock.counted' AND occurred_at <= %s), '-infinity')
ORDER BY occurred_at, version"""
HISTORY_AFTER = (
    "SELECT type, data::text FROM events WHERE stream = %s AND occurred_at > %s"
    " ORDER BY occurred_at, version"
)
STORE_RESPONSE = (
    "INSERT INTO idempotency (principal, key, fingerprint, status, response, fill_positions)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
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

    carries_positions: bool
    """Whether an accepted body is a CommandResult (the events' positions in it): it is
    stored with the command's events, before the primary has given them positions, as
    positions 0, and a replay reads them from the events."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """Status and body for an accepted command."""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        """Status and body for a refused one."""


@dataclass
class CommandService:
    """Runs commands against the event store on the primary."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    after_commit: Callable[[Sequence[Decision]], None] | None = None
    """Runs in a thread after accepted commands commit (wake-ups, expiry timers), for
    every command that committed since it last ran."""
    store: EventStore = field(default_factory=lambda: EventStore(Codec(ALL_EVENTS)))
    _committed: list[Decision] = field(default_factory=list, init=False, repr=False)
    _sender: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

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
                self._committed.append(outcome.decision)
                if self._sender is None or self._sender.done():
                    self._sender = asyncio.create_task(self._send_committed(self.after_commit))
            return outcome
        raise AssertionError("unreachable")

    async def drain(self) -> None:
        """Wait until the after-commit work of every command so far has run."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def _send_committed(self, after_commit: Callable[[Sequence[Decision]], None]) -> None:
        # Off the response's path, one thread hop for everything that committed while the
        # previous one ran: under load a store's projectors get one wake-up per batch, not
        # one per command. A wake-up lost to a crash here costs latency only (the sweep).
        while self._committed:
            batch, self._committed = self._committed, []
            try:
                await asyncio.to_thread(after_commit, batch)
            except Exception:
                log.exception("after-commit work failed", commands=len(batch))

    async def _attempt(
        self,
        command: Command,
        actor: Actor,
        responder: Responder,
        idempotency: Idempotency | None,
    ) -> Outcome:
        async with self.pool.connection() as conn:
            # Autocommit: the script's own BEGIN and COMMIT bound the transaction, so they
            # can travel with other statements (psycopg would send its BEGIN on its own).
            await conn.set_autocommit(True)
            try:
                return await self._transaction(Script(conn), command, actor, responder, idempotency)
            finally:
                await _end(conn)

    async def _transaction(
        self,
        script: Script,
        command: Command,
        actor: Actor,
        responder: Responder,
        idempotency: Idempotency | None,
    ) -> Outcome:
        """Two round trips for most commands: the key's lock and lookup with the stream
        locks; the append with the response and the commit. A command on a document
        (transfer receipt or cancel, reservation release or fulfilment) reads it before
        locking."""
        script.later("BEGIN")
        key = _key_statements(actor.id, idempotency) if idempotency is not None else []
        # The streams of a command that names them all are locked with the key's lookup.
        # A replay then rolls those locks back unused, which is cheap; the order (key,
        # then streams) is the same for every command.
        early = streams_of(command, None) if document_stream(command) is None else None
        locks = self.store.lock_statements(early.write, early.read) if early else []
        if not key and not locks:
            script.later("SAVEPOINT decide")  # nothing to ask yet: it goes with the document
        sets = await script.rows(*key, ("SAVEPOINT decide", ()), *locks) if key or locks else []
        if idempotency is not None:
            replay = _replay(sets[1], idempotency)
            if replay is not None:
                script.later("ROLLBACK")
                await script.flush()
                return replay
        try:
            decision, (status, body) = await self._decide_and_append(
                script,
                command,
                actor,
                responder,
                idempotency=idempotency,
                locked=sets[len(key) + 1 :] if early else None,
            )
        except CommandRejected as error:
            if idempotency is None:
                raise
            # A refusal is stored without what was locked or written (a version conflict
            # from the append left the transaction failed: this also clears that).
            script.later("ROLLBACK TO SAVEPOINT decide")
            status, refusal = responder.rejected(error)
            script.later(*_store(actor.id, idempotency, status, refusal, fill_positions=False))
            script.later("COMMIT")
            await script.flush()
            return Outcome(status, refusal)
        return Outcome(status, body, decision=decision)

    async def _decide_and_append(
        self,
        script: Script,
        command: Command,
        actor: Actor,
        responder: Responder,
        *,
        idempotency: Idempotency | None,
        locked: Sequence[Rows] | None,
    ) -> tuple[Decision, tuple[int, bytes]]:
        """Decide on the locked streams' states, then append, store the response and
        commit in one round trip; `locked` holds the rows of the locks already taken, if
        they were. The decision and the response to send."""
        if locked is not None:
            streams = streams_of(command, None)
            heads, shared = self.store.heads_of(locked)
        else:
            document = await _read_document(script, command)
            streams = streams_of(command, document)
            heads, shared = await self.store.lock_and_share(script, streams.write, streams.read)
        context = _context(heads, shared, streams.all)
        needs = context.history_needs(command)
        if needs:
            context = await self._with_histories(script, context, needs)
        changes = decide(command, context)
        after = context.advanced(changes)
        command_id = str(uuid.uuid4())
        writes = _writes(changes, context, after)
        metadata = _metadata(actor, command_id, idempotency)
        try:
            appending = self.store.appending(writes, metadata, locked=heads)
        except WrongExpectedVersion as error:
            raise _conflict(error) from None
        # Every version is known under the locks; only the positions are not, until the
        # events are inserted. The stored response has positions 0 (a replay reads them).
        expected = appending.expected()
        partitions = frozenset(change.store for change in changes)
        events = tuple(change.event for change in changes)
        stored = responder.accepted(
            Decision(result_of(command_id, expected, changes, after), after, partitions, events)
        )
        then: list[Statement] = [("RELEASE SAVEPOINT decide", ())]
        if idempotency is not None:
            then.append(
                _store(actor.id, idempotency, *stored, fill_positions=responder.carries_positions)
            )
        then.append(("COMMIT", ()))
        try:
            rows, *_ = await script.rows(appending.statement, *then)
        except psycopg.Error as error:
            failure = appending.failure(error)
            if isinstance(failure, WrongExpectedVersion):
                raise _conflict(failure) from None
            if failure is error:
                raise
            raise failure from error
        landed = {recorded.id: recorded.position for recorded in appending.recorded(rows)}
        if landed.keys() != {recorded.id for recorded in expected}:
            raise AssertionError("append_events returned other events than it was given")
        recorded = [replace(event, position=landed[event.id]) for event in expected]
        decision = Decision(
            result_of(command_id, recorded, changes, after), after, partitions, events
        )
        return decision, responder.accepted(decision) if responder.carries_positions else stored

    async def _with_histories(
        self, script: Script, context: Context, needs: Sequence[HistoryNeed]
    ) -> Context:
        """The context with the stock histories a dated change is checked against (rule 4),
        read under the streams' locks in this transaction: a third round trip, only for
        commands dated before an event their streams already hold."""
        found = await script.rows(*(_history_statement(need) for need in needs))
        histories = {
            need.stream: StockHistory(
                need,
                tuple(cast("StockEvent", self.store.codec.decode(tag, data)) for tag, data in rows),
            )
            for need, rows in zip(needs, found, strict=True)
        }
        return Context(context.heads, histories)


def _history_statement(need: HistoryNeed) -> Statement:
    if need.from_count:
        return (HISTORY_FROM_COUNT, (need.stream, need.stream, need.at))
    return (HISTORY_AFTER, (need.stream, need.at))


def _conflict(error: WrongExpectedVersion) -> VersionConflict:
    return VersionConflict(
        f"stream {error.stream} is at version {error.current}, not {error.expected}",
        [
            {
                "stream": error.stream,
                "expected_version": error.expected,
                "current_version": error.current,
            }
        ],
    )


async def _end(conn: psycopg.AsyncConnection[Any]) -> None:
    """Roll back what an error left open and give the pool its connection as it lent it."""
    status = conn.info.transaction_status
    if conn.closed:
        return  # the pool discards it
    if status not in (TransactionStatus.IDLE, TransactionStatus.INTRANS, TransactionStatus.INERROR):
        # Broken, or interrupted mid-statement (a cancelled request): not worth trusting.
        await conn.close()
        return
    if status != TransactionStatus.IDLE:
        await conn.execute("ROLLBACK")
    await conn.set_autocommit(False)


def _key_statements(principal: str, idempotency: Idempotency) -> list[Statement]:
    # The lookup runs once the lock is granted, with a snapshot taken then: it sees the
    # response of a racing request that held the key.
    return [
        (LOCK_KEY, (f"{len(principal)}:{principal}:{idempotency.key}",)),
        (FIND_RESPONSE, (principal, idempotency.key)),
    ]


def _replay(found: Rows, idempotency: Idempotency) -> Outcome | None:
    if not found:
        return None
    fingerprint, status, body, positions = found[0]
    if bytes(fingerprint) != idempotency.fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {idempotency.key!r} was first used with another request"
        )
    body = bytes(body) if positions is None else with_positions(bytes(body), positions)
    return Outcome(status, body, replayed=True)


def _store(
    principal: str,
    idempotency: Idempotency,
    status: int,
    body: bytes,
    *,
    fill_positions: bool,
) -> Statement:
    return (
        STORE_RESPONSE,
        (principal, idempotency.key, idempotency.fingerprint, status, body, fill_positions),
    )


async def _read_document(script: Script, command: Command) -> Any:
    stream = document_stream(command)
    if stream is None:
        return None
    [rows] = await script.rows((READ_DOCUMENT, (stream,)))
    return decode_state(stream, rows[0][1] if rows else None)


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
