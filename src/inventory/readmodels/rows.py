"""How the query functions read rows on the API's async connections."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import tuple_row

Conn = psycopg.AsyncConnection[Any]
Row = tuple[Any, ...]


async def fetch(
    conn: Conn, query: Any, params: Any = None, *, prepare: bool | None = None
) -> list[Row]:
    """Every row of `query` (`prepare` as psycopg's: None prepares it once used often)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(query, params, prepare=prepare)
    return await cur.fetchall()


def like_prefix(prefix: str | None) -> str:
    """A LIKE pattern matching strings that start with `prefix` (all when None)."""
    if not prefix:
        return "%"
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
