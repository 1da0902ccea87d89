"""One attempt at a command: a transaction from the event store, decide, append, remember."""

# One transaction per command holds everything that must happen exactly once: the
# idempotency record, the stream locks, the events, the streams' new states and the stored
# response (eventstore/transaction.py sends them in two round trips for most commands).

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

import psycopg

from inventory.domain.availability import HistoryNeed, StockHistory
from inventory.domain.commands import Command
from inventory.domain.context import Context, Streams
from inventory.domain.decider import decide, document_stream, streams_of
from inventory.domain.errors import CommandRejected, VersionConflict
from inventory.domain.events import StockEvent
from inventory.domain.state import decode_state
from inventory.eventstore.decided import context_of, writes_of
from inventory.eventstore.errors import WrongExpectedVersion
from inventory.eventstore.idempotency import Remembered
from inventory.eventstore.store import EventStore
from inventory.eventstore.transaction import Transaction
from inventory.service.cache import HeadCache
from inventory.service.once import attempt_once, on_connection
from inventory.service.outcome import (
    Actor,
    Idempotency,
    Outcome,
    Responder,
)
from inventory.service.rendering import accepted, landed, metadata_of, replayed


async def attempt(
    store: EventStore,
    conn: psycopg.AsyncConnection[Any],
    command: Command,
    *,
    actor: Actor,
    responder: Responder,
    idempotency: Idempotency | None,
    heads: HeadCache | None = None,
    once: bool = True,
) -> Outcome:
    """Decide and append `command` in one transaction on `conn`, or replay its key's
    response: in one round trip on the `heads` cached when they are current (once.py;
    not when `once` is false: a batch just found them stale)."""
    sent = once and await _one_trip(store, conn, command, heads, (actor, responder, idempotency))
    if sent:
        return sent
    async with store.transaction(conn) as tx:
        if idempotency is not None:
            tx.look_up(actor.id, idempotency.key)
        # The streams of a command that names them all are locked with the key's lookup.
        # A replay then rolls those locks back unused, which is cheap; the order (key,
        # then streams) is the same for every command.
        document = document_stream(command)
        streams = streams_of(command, None) if document is None else document
        if not isinstance(streams, str):
            tx.lock(streams.write, streams.read)
        if idempotency is not None:
            remembered = await tx.remembered()
            if remembered is not None:
                return await _replay(tx, remembered, idempotency)
        return await _locked(
            tx,
            command,
            streams,
            actor=actor,
            responder=responder,
            idempotency=idempotency,
            heads=heads,
        )


async def _one_trip(
    store: EventStore,
    conn: psycopg.AsyncConnection[Any],
    command: Command,
    heads: HeadCache | None,
    who: tuple[Actor, Responder, Idempotency | None],
) -> Outcome | None:
    """The command in one round trip on `conn` (once.py), or None: take the locked path."""
    if heads is None:
        return None
    actor, responder, idempotency = who
    sent = await attempt_once(
        store,
        on_connection(conn),
        heads,
        command,
        actor=actor,
        responder=responder,
        idempotency=idempotency,
    )
    return sent if isinstance(sent, Outcome) else None


async def _locked(
    tx: Transaction,
    command: Command,
    streams: Streams | str,
    *,
    actor: Actor,
    responder: Responder,
    idempotency: Idempotency | None,
    heads: HeadCache | None,
) -> Outcome:
    """Decide on the locked heads and append, or store the refusal; the heads the
    transaction read or wrote cached once its durable marker returned."""
    context = Context()
    try:
        context = await _context(tx, command, streams)
        outcome = await _decide_and_append(
            tx, command, context, actor=actor, responder=responder, idempotency=idempotency
        )
    except CommandRejected as error:
        if idempotency is None:
            await tx.settle()  # refused on states other commands may not have flushed
            _keep(heads, context)
            raise
        outcome = await _refuse(tx, actor, responder, idempotency, error)
        _keep(heads, context)
        return outcome
    _keep(heads, outcome.decision.after if outcome.decision else context)
    return outcome


def _keep(heads: HeadCache | None, context: Context) -> None:
    if heads is not None:
        heads.keep(context.heads)


async def _replay(tx: Transaction, remembered: Remembered, idempotency: Idempotency) -> Outcome:
    """The key's stored response, once it is durable: the command that stored it may not
    have had its commit flushed yet (transaction.py, early lock release)."""
    await tx.settle()
    return replayed(remembered, idempotency)


async def _context(tx: Transaction, command: Command, streams: Streams | str) -> Context:
    """The locked streams' states, with the histories a dated change is checked against.
    `streams`: those already locked, or the document naming them: a command on a document
    (transfer receipt or cancel, reservation release or fulfilment) reads it first."""
    if isinstance(streams, str):
        head = await tx.document(streams)
        streams = streams_of(command, decode_state(streams, head.state if head else None))
        tx.lock(streams.write, streams.read)
    locked, shared = await tx.heads()
    context = context_of(locked, shared, streams.all)
    needs = context.history_needs(command)
    return await _with_histories(tx, context, needs) if needs else context


async def _decide_and_append(
    tx: Transaction,
    command: Command,
    context: Context,
    *,
    actor: Actor,
    responder: Responder,
    idempotency: Idempotency | None,
) -> Outcome:
    """Decide on the locked streams' states, then append, store the response and commit
    in one round trip. The response is rendered once, before the events have positions,
    with marks where they go: the store fills them in where it stores it, and so here."""
    changes = decide(command, context)
    after = context.advanced(changes)
    command_id = str(uuid.uuid4())
    metadata = metadata_of(actor, command_id, idempotency)
    try:
        # Every version is known under the locks; only the positions are not, until
        # the events are inserted.
        expected = tx.append(writes_of(changes, context, after), metadata)
        status, body = accepted(responder, command_id, expected, changes, after)
        if idempotency is not None:
            tx.remember(actor.id, idempotency.key, idempotency.fingerprint, status, body)
        recorded = await tx.commit()
    except WrongExpectedVersion as error:
        raise _conflict(error) from None
    return landed((status, body), command_id, recorded, changes, after)


async def _refuse(
    tx: Transaction,
    actor: Actor,
    responder: Responder,
    idempotency: Idempotency,
    error: CommandRejected,
) -> Outcome:
    """Store the refusal under the key, without what was locked or written, and commit."""
    tx.rewind()
    status, body = responder.rejected(error)
    tx.remember(actor.id, idempotency.key, idempotency.fingerprint, status, body)
    await tx.commit()
    return Outcome(status, body)


async def _with_histories(
    tx: Transaction, context: Context, needs: Sequence[HistoryNeed]
) -> Context:
    """The context with the stock histories a dated change is checked against (rule 4),
    read under the streams' locks in this transaction: a third round trip, only for
    commands dated before an event their streams already hold."""
    found = await tx.histories(needs)
    histories = {
        need.stream: StockHistory(need, tuple(cast("list[StockEvent]", events)))
        for need, events in zip(needs, found, strict=True)
    }
    return Context(context.heads, histories)


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
