"""Stalls: the event a projector cannot apply in one partition, recorded on the replica.

The worker writes a row of `projection_stalls` (projections/0050) in a transaction of its
own when a projector fails on an event, so every API process, the audit and the CLI read
the same stall, and it outlives the worker. A row is live while its projector's
checkpoint is below the event's seq: readers ignore one the partition has got past (a
code fix, a rebuild), and the worker deletes it. Rows hold ids and the error, never the
event's data or metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.readmodels.projection import ReplicaEvent

MAX_ERROR = 300  # characters of an error message kept (its first line)


@dataclass(frozen=True)
class Stall:
    """A projector stopped at one event of one partition, and why."""

    projector: str
    partition: str
    seq: int
    position: int
    stream: str
    event_type: str
    error_class: str
    error: str
    first_failed_at: datetime | None = None
    attempts: int = 1

    @classmethod
    def of(cls, projector: str, event: ReplicaEvent, error: BaseException) -> Stall:
        """The stall of `projector` on `event`, failing with `error`."""
        error_class, message = describe_error(error)
        return cls(
            projector,
            event.partition,
            event.seq,
            event.position,
            event.stream,
            event.type,
            error_class,
            message,
        )

    @property
    def store(self) -> str:
        """The partition as people name it."""
        return self.partition or "(global)"

    def describe(self) -> str:
        """One line naming the projector, the store, the event and the error."""
        return (
            f"projector {self.projector} stalled in store {self.store} at event seq "
            f"{self.seq} (position {self.position}, stream {self.stream}, type "
            f"{self.event_type}): {self.error_class}: {self.error}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The stall as JSON-ready fields (health details)."""
        return {
            "projector": self.projector,
            "store": self.partition,
            "seq": self.seq,
            "position": self.position,
            "stream": self.stream,
            "type": self.event_type,
            "error_class": self.error_class,
            "error": self.error,
            "first_failed_at": self.first_failed_at.isoformat() if self.first_failed_at else None,
            "attempts": self.attempts,
        }


def describe_error(error: BaseException) -> tuple[str, str]:
    """(class, message) of an error: its first non-blank line, with a SQLSTATE if any,
    and bounded (a database error's DETAIL and CONTEXT lines may quote row values)."""
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else kind.__name__
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        message = f"[{sqlstate}] {message}"
    return name, message[:MAX_ERROR]


RECORD = """
INSERT INTO projection_stalls AS s
    (projector, partition, seq, position, stream, event_type, error_class, error)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (projector, partition) DO UPDATE SET
    attempts = CASE WHEN s.seq = excluded.seq THEN s.attempts + 1 ELSE 1 END,
    first_failed_at = CASE WHEN s.seq = excluded.seq THEN s.first_failed_at ELSE now() END,
    last_failed_at = now(), seq = excluded.seq, position = excluded.position,
    stream = excluded.stream, event_type = excluded.event_type,
    error_class = excluded.error_class, error = excluded.error
"""
# Rows of projectors that have got past their event: gone.
CLEAR_PAST = """
DELETE FROM projection_stalls AS s USING projector_checkpoints AS c
WHERE c.projector = s.projector AND c.partition = s.partition AND c.seq >= s.seq
"""
# Live stalls: the projector's checkpoint (0 when reset) is still below the event.
LIVE = """
SELECT s.projector, s.partition, s.seq, s.position, s.stream, s.event_type, s.error_class,
       s.error, s.first_failed_at, s.attempts
FROM projection_stalls AS s
LEFT JOIN projector_checkpoints AS c ON c.projector = s.projector AND c.partition = s.partition
WHERE coalesce(c.seq, 0) < s.seq AND (%(store)s::text IS NULL OR s.partition = %(store)s)
ORDER BY s.partition, s.projector
"""


def record(conn: psycopg.Connection[Any], stalls: Sequence[Stall]) -> None:
    """Record (or count one more attempt at) each stall, in a transaction of its own."""
    with conn.transaction(), conn.cursor() as cur:
        for stall in stalls:
            cur.execute(
                RECORD,
                (
                    stall.projector,
                    stall.partition,
                    stall.seq,
                    stall.position,
                    stall.stream,
                    stall.event_type,
                    stall.error_class,
                    stall.error,
                ),
            )


def clear(conn: psycopg.Connection[Any], partition: str, projectors: Sequence[str]) -> None:
    """Delete the stalls of `projectors` in `partition` (they applied every event)."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM projection_stalls WHERE partition = %s AND projector = ANY(%s)",
            (partition, list(projectors)),
        )


def clear_past(conn: psycopg.Connection[Any]) -> int:
    """Delete every stall whose projector has got past its event; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(CLEAR_PAST)
        return cur.rowcount


def live(conn: psycopg.Connection[Any], store: str | None = None) -> list[Stall]:
    """Every live stall (of one store when given), by store and projector."""
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(LIVE, {"store": store})
        return [Stall(*row) for row in cur.fetchall()]


async def live_async(conn: psycopg.AsyncConnection[Any], store: str | None = None) -> list[Stall]:
    """`live` on an async connection (the API's)."""
    async with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(LIVE, {"store": store})
        return [Stall(*row) for row in await cur.fetchall()]
