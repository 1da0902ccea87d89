"""handle(command): a transaction from the event store, decide, append; after-commit work."""

# The projectors are woken after the command's transaction commits.

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import Command
from inventory.domain.context import Head, StreamNotInContext
from inventory.domain.events import ALL_EVENTS
from inventory.domain.state import TransferState, decode_state
from inventory.domain.streams import transfer_stream
from inventory.eventstore.batch import BUSY, Answer, Busy, Call, command_alone, command_batch
from inventory.eventstore.codec import Codec
from inventory.eventstore.once import Stale
from inventory.eventstore.store import EventStore
from inventory.service.attempt import attempt
from inventory.service.batcher import Batcher
from inventory.service.cache import HeadCache, Turn
from inventory.service.once import Send, attempt_once, written
from inventory.service.outcome import Actor, Decision, Idempotency, Outcome, Responder

log = structlog.get_logger(__name__)

QUEUED = 2
"""Times a command is queued in a batch at most before it goes on a connection of its own:
once more after a stale head, a held lock, or a command before it not written."""
RETRIES = 5
"""How often a command is rerun after a deadlock, a serialization failure or a document
that appeared between its unlocked read and its lock."""


@dataclass
class CommandService:
    """Runs commands against the event store on the primary."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    after_commit: Callable[[Sequence[Decision]], None] | None = None
    """Runs in a thread after accepted commands commit (wake-ups, expiry timers), for
    every command that committed since it last ran."""
    store: EventStore = field(default_factory=lambda: EventStore(Codec(ALL_EVENTS)))
    heads: HeadCache | None = field(default_factory=HeadCache)
    """The streams' heads commands are decided on in one round trip (once.py); None: every
    command takes the locked path."""
    batches: bool = True
    """Whether one-trip commands of one store that arrive together share a transaction
    (group commit, batcher.py); False: each is sent on its own."""
    batcher: Batcher | None = field(default=None, init=False)
    _committed: list[Decision] = field(default_factory=list, init=False, repr=False)
    _sender: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.batches and self.heads is not None:
            self.batcher = Batcher(self.pool, command_batch, command_alone)

    async def transfer_stores(self, transfer_id: str) -> tuple[str, str] | None:
        """A transfer's source and destination, or None when it does not exist."""
        stream = transfer_stream(transfer_id)
        async with self.pool.connection() as conn:
            head = await self.store.document(conn, stream)
        state = decode_state(stream, head.state if head else None)
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
        for attempt_number in range(1, RETRIES + 1):
            try:
                outcome = await self._attempt(command, actor, responder, idempotency)
            except (StreamNotInContext, psycopg.errors.DeadlockDetected) as error:
                if attempt_number == RETRIES:
                    raise
                log.info("command rerun", attempt=attempt_number, reason=type(error).__name__)
                continue
            if outcome.decision is not None and self.after_commit is not None:
                self._committed.append(outcome.decision)
                if self._sender is None or self._sender.done():
                    self._sender = asyncio.create_task(self._send_committed(self.after_commit))
            return outcome
        raise AssertionError("unreachable")

    async def _attempt(
        self,
        command: Command,
        actor: Actor,
        responder: Responder,
        idempotency: Idempotency | None,
    ) -> Outcome:
        """In the next batch when the cached heads allow; else on a connection of
        its own: in one round trip (busy in a batch, or not batched), or locked. Queued,
        it hands its turn on; not written then (a held lock, a stale head, one before it
        not written), it goes back in line to decide again, QUEUED times at most."""
        who = (actor, responder, idempotency)
        heads, batcher = self.heads, self.batcher
        streams = written(heads, command) if heads is not None else frozenset()
        if heads is None or batcher is None:
            async with self._turn(streams):
                return await self._alone(command, who, once=True)
        sent: Outcome | Busy | Stale | None = None
        for _ in range(QUEUED):
            async with self._turn(streams) as turn:
                sent = await attempt_once(
                    self.store,
                    self._batched(heads, batcher, turn),
                    heads,
                    command,
                    actor=actor,
                    responder=responder,
                    idempotency=idempotency,
                    ahead=True,
                    current=sent.current if isinstance(sent, Stale) else None,
                )
                if isinstance(sent, Outcome):
                    return sent
                if not turn.handed:
                    return await self._after_queued(heads, command, who, streams, sent)
        async with self._turn(streams):
            return await self._after_queued(heads, command, who, streams, sent)

    async def _after_queued(
        self,
        heads: HeadCache,
        command: Command,
        who: tuple[Actor, Responder, Idempotency | None],
        streams: frozenset[str],
        sent: Outcome | Busy | Stale | None,
    ) -> Outcome:
        """On a connection of its own (in one round trip when a batch found it busy, else
        locked), its turn held, once every command queued before it on its streams is
        answered: no command of this process writes them meanwhile, so the batches after
        it do not find them locked."""
        await heads.settled(streams)
        return await self._alone(command, who, once=isinstance(sent, Busy))

    async def _alone(
        self,
        command: Command,
        who: tuple[Actor, Responder, Idempotency | None],
        *,
        once: bool,
    ) -> Outcome:
        """On a connection of its own: in one round trip when `once`, else locked."""
        actor, responder, idempotency = who
        async with self.pool.connection() as conn:
            return await attempt(
                self.store,
                conn,
                command,
                actor=actor,
                responder=responder,
                idempotency=idempotency,
                heads=self.heads,
                once=once,
            )

    @staticmethod
    def _batched(heads: HeadCache, batcher: Batcher, turn: Turn) -> Send:
        """attempt_once's `send` through the batcher: once queued, the heads the command
        will leave are its successors' to decide on, and its turn is theirs."""

        def queued(answer: asyncio.Future[Answer], leaves: Mapping[str, Head]) -> None:
            heads.queue(leaves, answer)
            turn.hand_on()

        async def send(
            call: Call, stores: frozenset[str | None], leaves: Mapping[str, Head]
        ) -> Answer:
            # A command of no store's events has no chain to order it by: locked path.
            if not stores:
                return BUSY
            return await batcher(call, lambda a: queued(a, leaves))

        return send

    def _turn(self, streams: frozenset[str]) -> AbstractAsyncContextManager[Turn]:
        """The command's turn on the streams it writes, among this process's commands."""
        return self.heads.turn(streams) if self.heads and streams else nullcontext(Turn(_none))

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


def _none() -> None:
    """A command without streams to take turns on has no successors to let go."""
