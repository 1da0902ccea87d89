"""A command in one round trip: decided on the heads this process cached, checked where written."""

# The locked path (attempt.py) reads the streams' heads under their locks, decides, then
# writes: two round trips. Here the decision is made first, on cached heads, and one call
# (eventstore/once.py, migrations/0096) takes the same locks, checks that every stream is
# still at the version the decision assumed and only then appends and stores the
# response. When a head is stale nothing is written, and the command is decided again on
# the heads the call found under the locks and sent once more (two round trips, like the
# locked path); a second stale call takes the locked path, which caches what it read.
# So does a command this path cannot prove from heads alone: one that needs histories
# (rule 4), and one refused on cached heads (a stale head could refuse wrongly; the
# locked path decides and stores the refusal).

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from inventory.domain.commands import Command
from inventory.domain.context import Change, Context, Head, StreamNotInContext, Streams
from inventory.domain.decider import decide, document_stream, streams_of
from inventory.domain.errors import CommandRejected
from inventory.domain.state import decode_state
from inventory.eventstore.append import appending
from inventory.eventstore.batch import Answer, Busy, Call, command_alone
from inventory.eventstore.decided import writes_of
from inventory.eventstore.idempotency import Response
from inventory.eventstore.once import Stale
from inventory.eventstore.records import StreamHead, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.service.cache import HeadCache
from inventory.service.outcome import Actor, Idempotency, Outcome, Responder
from inventory.service.rendering import accepted, landed, metadata_of, replayed

TRIES = 2
"""Calls per command: the second decides on the heads the first found stale, so a stale
cache costs the two round trips of the locked path, not three."""
Lookup = Callable[[str], Head]
Send = Callable[[Call, frozenset[str | None], Mapping[str, Head]], Awaitable[Answer]]
"""Sends a decided command (given the stores its events are in and the heads it leaves
its written streams at) and answers for it."""


@dataclass(frozen=True)
class _Decided:
    """A decision on cached heads: the streams, the heads assumed, the changes and after."""

    streams: Streams
    context: Context
    changes: list[Change]
    after: Context
    writes: list[StreamWrite]


async def attempt_once(
    store: EventStore,
    send: Send,
    heads: HeadCache,
    command: Command,
    *,
    actor: Actor,
    responder: Responder,
    idempotency: Idempotency | None,
    ahead: bool = False,
    current: Mapping[str, StreamHead] | None = None,
) -> Outcome | Busy | Stale | None:
    """The command decided on `heads`, in one round trip by `send`; None: take the locked
    path; Busy: `send` could not take it, the one-command path (on_connection) may;
    Stale: so were the heads of every try (the last's current heads in it). `ahead`:
    decided on the heads commands queued in a batch will leave, if any (for a `send` that
    batches: command_batch checks they were written), and tried once, as its turn is
    handed on once queued; `current`: heads a stale call found."""
    after: set[asyncio.Future[Any]] = set()
    look = _fresher(current or {}, heads)
    look = _ahead(heads, look, after) if ahead else look
    stale: Stale | None = None
    for tried in range(1 if ahead else TRIES):
        decided = _decided(look, command)
        if decided is None:
            return None
        outcome = await _send(store, send, decided, (actor, responder, idempotency), tuple(after))
        if isinstance(outcome, Busy):
            return outcome
        if isinstance(outcome, Stale):
            heads.misses += 1
            heads.forget(outcome.current)
            look = _fresher(outcome.current, heads)
            after.clear()
            stale = outcome
            continue
        return _kept(heads, outcome, refreshed=tried > 0)
    return stale


def _kept(heads: HeadCache, outcome: Outcome, *, refreshed: bool) -> Outcome:
    """`outcome`, counted, its heads cached (durable: its batch's marker returned)."""
    if refreshed:
        heads.refreshed += 1
    else:
        heads.hits += 1
    if outcome.decision is not None:
        heads.keep(outcome.decision.after.heads)
    return outcome


def on_connection(conn: psycopg.AsyncConnection[Any]) -> Send:
    """`send` for attempt_once: command_once on `conn`, the command on its own."""

    async def send(call: Call, stores: frozenset[str | None], _: Mapping[str, Head]) -> Answer:
        return (await command_alone(conn, [call], [()]))[0]

    return send


async def _send(
    store: EventStore,
    send: Send,
    decided: _Decided,
    who: tuple[Actor, Responder, Idempotency | None],
    queued: tuple[asyncio.Future[Any], ...],
) -> Outcome | Stale | Busy:
    """Append what `decided` decided, or answer the key's stored response. `queued`: the
    answers of the queued commands whose heads it was decided on."""
    actor, responder, idempotency = who
    streams, context, changes, after = (
        decided.streams,
        decided.context,
        decided.changes,
        decided.after,
    )
    command_id = str(uuid.uuid4())
    assumed = {stream: context.version(stream) for stream in sorted(streams.write)}
    locked = {stream: StreamHead(version, None) for stream, version in assumed.items()}
    metadata = metadata_of(actor, command_id, idempotency)
    append = appending(store.codec, decided.writes, metadata, locked=locked)
    response = accepted(responder, command_id, append.expected(), changes, after)
    read = {stream: context.version(stream) for stream in sorted(streams.read - streams.write)}
    stores = frozenset(new.store for write in decided.writes for new in write.events)
    call = Call(append, (assumed, read), _stored(actor, idempotency, response), queued)
    leaves = {stream: head for stream, head in after.heads.items() if stream in streams.write}
    answer = await send(call, stores, leaves)
    if isinstance(answer, (Stale, Busy)):
        return answer
    if not isinstance(answer, list):
        assert idempotency is not None  # a response is stored under a key only
        return replayed(answer, idempotency)
    return landed(response, command_id, answer, changes, after)


def _ahead(heads: HeadCache, look: Lookup, after: set[asyncio.Future[Any]]) -> Lookup:
    """Heads as queued commands will leave them, else as `look` finds them; the queued
    commands' answers whose heads were looked at added to `after`."""

    def ahead(stream: str) -> Head:
        queued = heads.queued(stream)
        if queued is None:
            return look(stream)
        head, answer = queued
        if answer is not None:
            after.add(answer)
        return head

    return ahead


def _fresher(current: Mapping[str, StreamHead], heads: HeadCache) -> Lookup:
    """Heads as a stale call found them under the locks, or the cached ones where those
    are as new. Not cached: only the call that succeeds on them shows them durable, and
    then its own heads after it are."""
    fresh = {
        name: Head(head.version, decode_state(name, head.state)) for name, head in current.items()
    }
    if not fresh:
        return heads.get

    def look(stream: str) -> Head:
        cached = heads.get(stream)
        found = fresh.get(stream)
        return found if found is not None and found.version > cached.version else cached

    return look


def _stored(
    actor: Actor, idempotency: Idempotency | None, response: tuple[int, bytes]
) -> Response | None:
    if idempotency is None:
        return None
    return Response(actor.id, idempotency.key, idempotency.fingerprint, *response)


def _decided(look: Lookup, command: Command) -> _Decided | None:
    """The command decided on cached heads, or None when that decision cannot be trusted
    or needs more than heads."""
    streams = _streams(look, command)
    if streams is None:
        return None
    context = Context({stream: look(stream) for stream in streams.all})
    if context.history_needs(command):
        return None
    try:
        changes = decide(command, context)
    except (CommandRejected, StreamNotInContext):
        return None
    after = context.advanced(changes)
    writes = writes_of(changes, context, after)
    if any(write.expected_version != context.version(write.stream) for write in writes):
        return None  # a count line's version that is not the cached one: refused, or stale
    return _Decided(streams, context, changes, after, writes)


def written(heads: HeadCache, command: Command) -> frozenset[str]:
    """The streams the command writes, as far as the cache can name them (none: unknown)."""
    streams = _streams(heads.get, command)
    return streams.write if streams is not None else frozenset()


def _streams(look: Lookup, command: Command) -> Streams | None:
    """The command's streams; a document's as its cached state names them (its own stream
    among them, so its version is checked too), or None when they cannot be named."""
    document = document_stream(command)
    if document is None:
        return streams_of(command, None)
    try:
        streams = streams_of(command, look(document).state)
    except (CommandRejected, StreamNotInContext, TypeError, ValueError):
        return None
    return streams if document in streams.all else None
