"""One call for a command decided on cached heads: key, locks, checks, append, response."""

# migrations/0096_command_once.sql does in one statement what a command's transaction
# (transaction.py) does in two round trips, given the versions the decision assumed. It is
# sent with BEGIN, COMMIT and the durable marker as one simple query (Script): one round
# trip. A psycopg pipeline of the same four statements, bound by the server, cost the API
# more CPU (0.79-0.88 against 0.68-0.75 ms per sale, 1,500 sales each, alternating; see
# bench/README.md), and an error inside it is logged as a warning on every stale head.
# The function turns synchronous_commit off for its transaction (early lock release); the
# marker after COMMIT returns once that commit is flushed, before the command is answered.

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from inventory.eventstore.append import WRONG_EXPECTED_VERSION, Appending
from inventory.eventstore.idempotency import Remembered, Response, lock_key, remembered
from inventory.eventstore.records import Recorded, StreamHead
from inventory.eventstore.script import Rows, Script
from inventory.eventstore.transaction import DURABLE, release

ONCE = (
    "SELECT id, position, stream, version, stored_fingerprint, stored_status,"
    " stored_response, stored_positions FROM command_once(%s, %s, %s, %s, %s, %s,"
    " %s::uuid[], %s::text[], %s::bigint[], %s::text[], %s::bigint[], %s::jsonb, %s::jsonb)"
)
STALE = "IV412"  # the SQLSTATE command_once raises when an assumed version is not current


class Stale(Exception):
    """The heads a decision assumed are not current: nothing was written; `current` holds
    the stale streams' heads as read under their locks (not yet known to be durable). The
    connection's transaction is left failed: the next call, or `transaction.Transaction`,
    rolls it back with its first round trip."""

    def __init__(self, current: Mapping[str, StreamHead]) -> None:
        super().__init__(", ".join(f"{name} at {head.version}" for name, head in current.items()))
        self.current = dict(current)


async def command_once(
    conn: psycopg.AsyncConnection[Any],
    appending: Appending,
    assumed: tuple[Mapping[str, int], Mapping[str, int]],
    response: Response | None,
) -> list[Recorded] | Remembered:
    """Append `appending` and store `response` if the written and read streams are at the
    `assumed` versions (write, read): where each event landed, in insertion order. The
    response already stored under the key instead, when there is one (nothing written).
    Raises Stale, and anything else the round trip raises, the connection then released."""
    expected = appending.expected()
    params = _params(appending, assumed, response)
    try:
        rows = await durable_call(conn, ONCE, params)
    except psycopg.Error as error:
        if error.sqlstate == STALE and not conn.closed:
            raise Stale(stale_heads(error.diag.message_detail or "")) from None
        if error.sqlstate == WRONG_EXPECTED_VERSION and not conn.closed:
            # append_events' own check, under the locks command_once just checked: not
            # expected, but the locked path then decides (and answers) it properly.
            raise Stale({}) from None
        await release(conn)
        raise
    except BaseException:
        await release(conn)
        raise
    await conn.set_autocommit(False)
    if rows and rows[0][0] is None:
        found = remembered([rows[0][4:]])
        assert found is not None
        return found
    landed = {row[0]: row[1] for row in rows}
    if landed.keys() != {recorded.id for recorded in expected}:
        raise AssertionError("command_once returned other events than it was given")
    return [Recorded(r.id, landed[r.id], r.stream, r.version, r.type) for r in expected]


def _params(
    appending: Appending,
    assumed: tuple[Mapping[str, int], Mapping[str, int]],
    response: Response | None,
) -> tuple[Any, ...]:
    """command_once's arguments, in its order."""
    write, read = assumed
    read = {name: version for name, version in read.items() if name not in write}
    writes, metadata = appending.statement[1]
    return (
        *_key(response),
        [recorded.id for recorded in appending.expected()],
        list(write),
        list(write.values()),
        list(read),
        list(read.values()),
        writes,
        metadata,
    )


def _key(response: Response | None) -> tuple[Any, ...]:
    """The key's lock, the key and the response to store; all None without a key."""
    if response is None:
        return (None,) * 6
    return (
        lock_key(response.principal, response.key),
        response.principal,
        response.key,
        response.fingerprint,
        response.status,
        response.body,
    )


async def durable_call(
    conn: psycopg.AsyncConnection[Any], query: str, params: tuple[Any, ...]
) -> Rows:
    """BEGIN, the call, COMMIT and the durable marker, as one simple query (after the
    ROLLBACK of a call that found its heads stale); the call's rows."""
    script = Script(conn)
    if conn.info.transaction_status == TransactionStatus.INERROR:
        script.later("ROLLBACK")
    elif not conn.autocommit:
        await conn.set_autocommit(True)
    script.later("BEGIN")
    script.ask("call", (query, params))
    script.later("COMMIT")
    script.later(DURABLE)
    return (await script.send())["call"]


def stale_heads(detail: str) -> dict[str, StreamHead]:
    """The stale streams' current heads, from command_once's (or command_batch's) DETAIL."""
    current = {}
    for line in detail.splitlines():
        stream, _, version, state = line.split("\t")
        current[stream] = StreamHead(int(version), state.encode() if state else None)
    return current
