"""Streams' heads: read one unlocked, or lock several in sorted order and read them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from inventory.eventstore.records import StreamHead
from inventory.eventstore.script import Statement

# A document (a transfer, a reservation) read without a lock: the streams it names are
# locked next, and a document that changed meanwhile reruns the command.
READ_HEAD = "SELECT version, state::text FROM streams WHERE stream = %s"
# migrations/0007_append_events.sql: lock in sorted order and read, in one round trip.
LOCK = "SELECT stream, version, state::text FROM lock_streams(%s::text[])"
# Streams a command only reads are locked FOR SHARE: many sales of one store hold its row
# together, and a period close (which writes it) waits for them, and they for it.
SHARE = (
    "SELECT stream, version, state::text FROM streams"
    " WHERE stream = ANY(%s::text[]) ORDER BY stream FOR SHARE"
)


def lock_statements(write: Iterable[str], read: Iterable[str]) -> list[Statement]:
    """Lock `write` exclusively, then the rest of `read` FOR SHARE, each in sorted order."""
    names = sorted(set(write))
    shared = sorted(set(read) - set(names))
    statements: list[Statement] = [(LOCK, (names,))]
    if shared:
        statements.append((SHARE, (shared,)))
    return statements


def heads(rows: Iterable[Any]) -> dict[str, StreamHead]:
    """Heads by stream from rows of (stream, version, state as text)."""
    return {
        name: StreamHead(version, state.encode() if state is not None else None)
        for name, version, state in rows
    }


def head(rows: Iterable[Any]) -> StreamHead | None:
    """The head READ_HEAD found, or None when the stream does not exist."""
    for version, state in rows:
        return StreamHead(version, state.encode() if state is not None else None)
    return None
