"""A command's transaction on the primary: key, locks, append and response, few round trips."""

# The transaction owns BEGIN, the savepoint a refusal rolls back to, and COMMIT. Its
# statements are queued on a Script and sent only when an answer is needed, so most
# commands take two round trips: (1) the key's lock and lookup, the savepoint and the
# stream locks; (2) the append, which stores the response, and COMMIT. A command on a
# document reads the document first; a change dated before its streams' latest events
# reads their histories under the locks: a round trip each.
#
# Early lock release: the transaction commits with synchronous_commit off, so its locks
# (the streams' rows, the key's, the store's chain lock) go at once, before its commit
# record reaches the disk, and the next command on those streams or that store need not
# wait for this one's WAL flush: under load, appends to one store or one hot stream share
# flushes again instead of queueing one fsync each. Before the command is answered, a
# statement that follows COMMIT in the same round trip (DURABLE) commits a WAL record of
# its own with the server's synchronous_commit: it returns once everything before it in
# the WAL is flushed (and, with a synchronous standby, replicated), this commit included.
# A transaction that saw this one's writes and wrote after it lands later in the WAL, so a
# crash loses both or neither; one that only read them (a replay of a stored response)
# sends DURABLE too before it answers (`settle`).

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import msgspec
import psycopg
from psycopg.pq import TransactionStatus

from inventory.domain.availability import HistoryNeed
from inventory.eventstore import heads, histories, idempotency
from inventory.eventstore.append import Appending, appending
from inventory.eventstore.codec import Codec
from inventory.eventstore.idempotency import Remembered, Response
from inventory.eventstore.records import Recorded, StreamHead, StreamWrite
from inventory.eventstore.script import Rows, Script

SAVEPOINT = "decide"
EARLY_RELEASE = "SET LOCAL synchronous_commit = off"
DURABLE = "SELECT pg_logical_emit_message(true, 'inventory.durable', '')"


class Transaction:
    """`async with store.transaction(conn) as tx`: one command's transaction on `conn`."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], codec: Codec) -> None:
        self._conn, self._codec = conn, codec
        self._script = Script(conn)
        self._answers: dict[str, Rows] = {}
        self._decided_from = False
        self._locked: dict[str, StreamHead] = {}
        self._appending: Appending | None = None
        self._response: Response | None = None

    async def __aenter__(self) -> Transaction:
        # Autocommit: the script's own BEGIN and COMMIT bound the transaction, so they
        # can travel with other statements (psycopg would send its BEGIN on its own).
        if self._conn.info.transaction_status == TransactionStatus.INERROR:
            # A call on stale cached heads (once.py) failed its transaction: rolled back
            # in this one's first round trip.
            self._script.later("ROLLBACK")
        elif not self._conn.autocommit:
            await self._conn.set_autocommit(True)
        self._script.later("BEGIN")
        self._script.later(EARLY_RELEASE)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await release(self._conn)

    def look_up(self, principal: str, key: str) -> None:
        """Queue the key's lock and the lookup of its stored response (`remembered`)."""
        lock, find = idempotency.key_statements(principal, key)
        self._script.later(*lock)
        self._script.ask("remembered", find)
        self._decide_from_here()

    def lock(self, write: Iterable[str], read: Iterable[str] = ()) -> None:
        """Queue the locks of the streams a command writes and reads (`heads`)."""
        self._decide_from_here()
        for place, statement in enumerate(heads.lock_statements(write, read)):
            self._script.ask(f"lock {place}", statement)

    async def remembered(self) -> Remembered | None:
        """The response stored under the key `look_up` locked, or None when it is new."""
        return idempotency.remembered(await self._answer("remembered"))

    async def heads(self) -> tuple[dict[str, StreamHead], dict[str, StreamHead]]:
        """The heads of the streams `lock` locked: the written ones, and the read ones."""
        self._locked = heads.heads(await self._answer("lock 0"))
        return self._locked, heads.heads(self._answers.pop("lock 1", []))

    async def document(self, stream: str) -> StreamHead | None:
        """The head of a document stream, read without a lock (before locking what it names)."""
        self._decide_from_here()
        self._script.ask("document", (heads.READ_HEAD, (stream,)))
        return heads.head(await self._answer("document"))

    async def histories(self, needs: Sequence[HistoryNeed]) -> list[list[msgspec.Struct]]:
        """The events each of `needs` names, in business-time order, read under the locks."""
        if not needs:
            return []
        for place, need in enumerate(needs):
            self._script.ask(f"history {place}", histories.statement(need))
        found = [await self._answer(f"history {place}") for place in range(len(needs))]
        return [[self._codec.decode(tag, data) for tag, data in rows] for rows in found]

    def append(
        self, writes: Sequence[StreamWrite], metadata: Mapping[str, Any] | None = None
    ) -> list[Recorded]:
        """Append `writes` at `commit`; where each event will land (positions 0, in
        insertion order). Raises WrongExpectedVersion when a locked stream is elsewhere."""
        self._appending = appending(self._codec, writes, metadata, locked=self._locked)
        return self._appending.expected()

    def remember(
        self, principal: str, key: str, fingerprint: bytes, status: int, body: bytes
    ) -> None:
        """Store the response under the key at `commit`; its position marks (positions.py)
        replaced by the positions the append gives the events."""
        self._response = Response(principal, key, fingerprint, status, body)

    def rewind(self) -> None:
        """Undo the locks and writes since the key's lookup (a refusal is stored without
        them); a version conflict from the append left the transaction failed: this also
        clears that."""
        self._appending = None
        self._script.later(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")

    async def commit(self) -> list[Recorded]:
        """Append, store the response and commit, in one round trip; where each event
        landed, in insertion order. Raises WrongExpectedVersion or DuplicateEvent."""
        appending_, response = self._appending, self._response
        self._appending = self._response = None
        if appending_ is None:
            if response is not None:
                self._script.later(*idempotency.store(response))
            self._script.later("COMMIT")
            self._script.later(DURABLE)
            await self._script.send()
            return []
        return await self._append_and_commit(appending_, response)

    async def _append_and_commit(
        self, appending_: Appending, response: Response | None
    ) -> list[Recorded]:
        expected = appending_.expected()
        statement = appending_.statement
        if response is not None:
            ids = [recorded.id for recorded in expected]
            statement = idempotency.append_and_store(statement, ids, response)
        self._script.ask("append", statement)
        self._script.later(f"RELEASE SAVEPOINT {SAVEPOINT}")
        self._script.later("COMMIT")
        self._script.later(DURABLE)
        try:
            rows = (await self._script.send())["append"]
        except psycopg.Error as error:
            failure = appending_.failure(error)
            if failure is error:
                raise
            raise failure from error
        landed = {recorded.id: recorded.position for recorded in appending_.recorded(rows)}
        if landed.keys() != {recorded.id for recorded in expected}:
            raise AssertionError("append_events returned other events than it was given")
        return [Recorded(r.id, landed[r.id], r.stream, r.version, r.type) for r in expected]

    async def settle(self) -> None:
        """End the transaction without writing, once what it read is durable: a reply built
        from another command's writes (a replay, a refusal) waits for them like theirs."""
        self._script.drop()
        self._script.later("ROLLBACK")
        self._script.later(DURABLE)
        await self._script.send()

    def _decide_from_here(self) -> None:
        """The savepoint a refusal rolls back to: after the key's lookup, before the rest."""
        if not self._decided_from:
            self._decided_from = True
            self._script.later(f"SAVEPOINT {SAVEPOINT}")

    async def _answer(self, name: str) -> Rows:
        if name not in self._answers:
            self._answers.update(await self._script.send())
        return self._answers.pop(name)


async def release(conn: psycopg.AsyncConnection[Any]) -> None:
    """Roll back what an error left open; the connection as the pool lent it, or closed."""
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
