"""Statements that need no answer yet travel with the next one that does: one round trip.

A command's transaction is a handful of short statements; over a real network (or a busy
event loop) the time between them, not the statements, is what holds the stream locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import TupleRow, tuple_row

Statement = tuple[str, Sequence[Any]]
Rows = list[TupleRow]


class Script:
    """Statements for one autocommit connection, bound client-side and sent as one simple
    query whenever an answer is needed. The server runs them in order, each with its own
    snapshot (READ COMMITTED), exactly as if they had been sent one by one."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self._pending: list[tuple[str | None, Statement]] = []

    def later(self, query: str, params: Sequence[Any] = ()) -> None:
        """Queue a statement whose result nobody needs."""
        self._pending.append((None, (query, params)))

    def ask(self, name: str, statement: Statement) -> None:
        """Queue a statement whose rows `send` answers under `name`."""
        self._pending.append((name, statement))

    def drop(self) -> None:
        """Forget what is queued and not sent yet."""
        self._pending.clear()

    async def send(self) -> dict[str, Rows]:
        """Send what is queued (nothing when nothing is); the rows of each asked statement."""
        queued, self._pending = self._pending, []
        if not queued:
            return {}
        sets = await self._send([statement for _, statement in queued])
        return {name: rows for (name, _), rows in zip(queued, sets, strict=True) if name}

    async def _send(self, statements: list[Statement]) -> list[Rows]:
        async with psycopg.AsyncClientCursor(self.conn, row_factory=tuple_row) as cur:
            text = "; ".join(cur.mogrify(query, params) for query, params in statements)
            await cur.execute(text)
            sets: list[Rows] = []
            while True:
                sets.append(await cur.fetchall() if cur.description is not None else [])
                if not cur.nextset():
                    return sets
