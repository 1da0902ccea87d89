"""Several one-trip commands in one transaction: one COMMIT, one durable marker."""

# migrations/0102_command_batch.sql runs each command as command_once (0096) would, in a
# block of its own, so one command's stale heads, busy lock or conflict rolls back only
# its own writes; 0104's command_batch_chains first takes the chain locks of every store
# the batch writes, in sorted order, so a batch of several stores never waits while it
# holds a lock. BEGIN, the call, COMMIT and the durable marker go as one simple query
# (Script), so no command of the batch is answered before its commit is flushed (early
# lock release, transaction.py). What a batch costs once instead of per command: the
# round trip, the transaction, the chain locks' wait and the WAL flush wait.

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import psycopg

from inventory.eventstore.append import Appending
from inventory.eventstore.idempotency import Remembered, Response, lock_key, remembered
from inventory.eventstore.once import Stale, command_once, durable_call, stale_heads
from inventory.eventstore.records import Recorded
from inventory.eventstore.script import Rows
from inventory.eventstore.transaction import release

BATCH = (
    "SELECT call, outcome, id, position, stream, version, stored_fingerprint, stored_status,"
    " stored_response, stored_positions, detail FROM command_batch_chains(%s::jsonb)"
)


class Busy:
    """A lock the command needs was held elsewhere: nothing written; the one-command path
    (which waits for its locks) decides it."""


BUSY = Busy()
Answer = list[Recorded] | Remembered | Stale | Busy
"""A command's part of a batch: where its events landed, the response already stored under
its key, its stale heads (nothing written), or busy (nothing written)."""


@dataclass(frozen=True)
class Call:
    """One command of a batch: its append, the versions its decision assumed (written,
    read) and the response to store under its key (None: no key)."""

    appending: Appending
    assumed: tuple[Mapping[str, int], Mapping[str, int]]
    response: Response | None
    after: tuple[asyncio.Future[Any], ...] = ()
    """The answers of the commands queued before it whose (not yet written) heads it was
    decided on: it is written only if they were (the batcher and command_batch check)."""


class _CallDocument(msgspec.Struct, omit_defaults=True):
    """One call as command_batch reads it."""

    event_ids: list[uuid.UUID]
    write_streams: list[str]
    write_versions: list[int]
    read_streams: list[str]
    read_versions: list[int]
    writes: msgspec.Raw
    metadata: msgspec.Raw
    after: list[int]
    key_lock: str | None = None
    principal: str | None = None
    key: str | None = None
    fingerprint: bytes | None = None
    status: int | None = None
    response: bytes | None = None


_json = msgspec.json.Encoder()


async def command_batch(
    conn: psycopg.AsyncConnection[Any], calls: Sequence[Call], after: Sequence[Sequence[int]]
) -> list[Answer]:
    """Each call's answer, in order, once the batch is committed and durable; `after`: per
    call, the places (from 1) of the calls of this batch it is written after only. Raises
    what the round trip raises (the connection then released): nothing is known committed."""
    documents = [_document(call, places) for call, places in zip(calls, after, strict=True)]
    arguments = _json.encode(documents).decode()
    try:
        rows = await durable_call(conn, BATCH, (arguments,))
    except BaseException:
        await release(conn)
        raise
    await conn.set_autocommit(False)
    return _answers(calls, rows)


async def command_alone(
    conn: psycopg.AsyncConnection[Any], calls: Sequence[Call], after: Sequence[Sequence[int]]
) -> list[Answer]:
    """command_batch's answer for a batch of one, sent as command_once (0096): the same
    locks, waited for rather than tried (alone, it cannot deadlock another batch)."""
    (call,) = calls
    try:
        return [await command_once(conn, call.appending, call.assumed, call.response)]
    except Stale as stale:
        return [stale]


def _document(call: Call, after: Sequence[int]) -> _CallDocument:
    write, read = call.assumed
    read = {name: version for name, version in read.items() if name not in write}
    writes, metadata = call.appending.statement[1]
    document = _CallDocument(
        [recorded.id for recorded in call.appending.expected()],
        list(write),
        list(write.values()),
        list(read),
        list(read.values()),
        msgspec.Raw(writes.encode()),
        msgspec.Raw(metadata.encode()),
        list(after),
    )
    response = call.response
    if response is not None:
        document.key_lock = lock_key(response.principal, response.key)
        document.principal, document.key = response.principal, response.key
        document.fingerprint, document.status = response.fingerprint, response.status
        document.response = response.body
    return document


def _answers(calls: Sequence[Call], rows: Rows) -> list[Answer]:
    """Each call's answer from command_batch's rows (every call has at least one)."""
    by_call: dict[int, list[Any]] = {}
    for row in rows:
        by_call.setdefault(row[0], []).append(row)
    answers: list[Answer] = []
    for place, call in enumerate(calls, 1):
        mine = by_call.get(place)
        if not mine:
            raise AssertionError(f"command_batch did not answer call {place}")
        outcome = mine[0][1]
        if outcome == "busy":
            answers.append(BUSY)
        elif outcome == "stale":
            answers.append(Stale(stale_heads(mine[0][10] or "")))
        elif outcome == "stored":
            found = remembered([mine[0][6:10]])
            assert found is not None
            answers.append(found)
        else:
            answers.append(_landed(call, mine))
    return answers


def _landed(call: Call, rows: list[Any]) -> list[Recorded]:
    """Where the call's events landed, in insertion order."""
    expected = call.appending.expected()
    landed = {row[2]: row[3] for row in rows if row[2] is not None}
    if landed.keys() != {recorded.id for recorded in expected}:
        raise AssertionError("command_batch returned other events than it was given")
    return [Recorded(r.id, landed[r.id], r.stream, r.version, r.type) for r in expected]
