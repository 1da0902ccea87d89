"""The idempotency record: a client's key, the request it came with, the response stored."""

# A command's first response is stored under (principal, key) in the command's own
# transaction, and answered again, as stored, to every retry with that key.

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from inventory.eventstore.script import Rows, Statement

# Concurrent requests with one key queue here; the second then finds the first's response.
# hashtextextended collisions only make two unrelated keys wait for each other.
LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# LEGACY: a response stored before migrations/0060 had positions 0 and `fill_positions`
# (0011); it gets them from the events it names, by stream and version, in its order.
FIND_RESPONSE = """
SELECT fingerprint, status, response, CASE WHEN fill_positions THEN ARRAY(
    SELECT ev.position
    FROM jsonb_array_elements(convert_from(response, 'UTF8')::jsonb -> 'events')
         WITH ORDINALITY AS named(event, place)
    JOIN events AS ev
      ON ev.stream = named.event ->> 'stream' AND ev.version = (named.event ->> 'version')::bigint
    ORDER BY named.place) END
FROM idempotency WHERE principal = %s AND key = %s"""
STORE_RESPONSE = (
    "INSERT INTO idempotency (principal, key, fingerprint, status, response)"
    " VALUES (%s, %s, %s, %s, %s)"
)
# The append and the response stored with the positions it gave the events, in one
# statement: `appended` runs once (it is read twice) and the INSERT runs to completion.
# The marks' places follow the ids' order (positions.py).
APPEND_AND_STORE = """
WITH appended AS ({append}),
stored AS (
    INSERT INTO idempotency (principal, key, fingerprint, status, response)
    SELECT %s, %s, %s, %s, response_with_positions(
        %s, coalesce(array_agg(appended.position ORDER BY marked.place), '{{}}'))
    FROM unnest(%s::uuid[]) WITH ORDINALITY AS marked(id, place)
    JOIN appended ON appended.id = marked.id
)
SELECT id, position, stream, version FROM appended ORDER BY position"""


@dataclass(frozen=True)
class Response:
    """A response to store under a key: the request's fingerprint, status and body."""

    principal: str
    key: str
    fingerprint: bytes
    status: int
    body: bytes


@dataclass(frozen=True)
class Remembered:
    """The response stored under a key, as first sent, and the request it answered."""

    fingerprint: bytes
    status: int
    body: bytes


def key_statements(principal: str, key: str) -> tuple[Statement, Statement]:
    """The key's lock, then its lookup."""
    # The lookup runs once the lock is granted, with a snapshot taken then: it sees the
    # response of a racing request that held the key.
    return (LOCK_KEY, (lock_key(principal, key),)), (FIND_RESPONSE, (principal, key))


def lock_key(principal: str, key: str) -> str:
    """The text whose hash is the key's advisory lock (LOCK_KEY)."""
    return f"{len(principal)}:{principal}:{key}"


def remembered(rows: Rows) -> Remembered | None:
    """The lookup's answer: the stored response, or None when the key is new."""
    if not rows:
        return None
    fingerprint, status, body, positions = rows[0]
    body = bytes(body) if positions is None else _legacy_with_positions(bytes(body), positions)
    return Remembered(bytes(fingerprint), status, body)


def store(response: Response) -> Statement:
    """Store `response` as it is."""
    return (
        STORE_RESPONSE,
        (response.principal, response.key, response.fingerprint, response.status, response.body),
    )


def append_and_store(append: Statement, ids: Sequence[uuid.UUID], response: Response) -> Statement:
    """`append` storing `response` with its marks replaced by the positions of `ids`."""
    query, params = append
    stored = (response.principal, response.key, response.fingerprint, response.status)
    return (
        APPEND_AND_STORE.format(append=query),
        (*params, *stored, response.body, list(ids)),
    )


def _legacy_with_positions(body: bytes, positions: Sequence[int]) -> bytes:
    """LEGACY (rows stored before migrations/0060): a command result stored with positions
    0, with `positions`, one per event in its order: the bytes it was first sent as (its
    keys keep their order, so encoding it again gives them)."""
    result = msgspec.json.decode(body)
    if len(positions) != len(result["events"]):
        raise ValueError(f"{len(result['events'])} events, {len(positions)} positions")
    for event, position in zip(result["events"], positions, strict=True):
        event["position"] = position
    result["position"] = max(positions, default=None)
    return msgspec.json.encode(result)
