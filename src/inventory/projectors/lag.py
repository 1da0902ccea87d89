"""How far the projectors have got: lag per partition, and the positions a query waits for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.readmodels.projection import Projector

# A loose index scan: one index probe per partition, not a scan of every event.
PARTITION_HEADS = """
WITH RECURSIVE parts AS (
    (SELECT partition FROM events ORDER BY partition LIMIT 1)
    UNION ALL
    SELECT (SELECT e.partition FROM events e WHERE e.partition > parts.partition
            ORDER BY e.partition LIMIT 1)
    FROM parts WHERE parts.partition IS NOT NULL
)
SELECT partition, (SELECT max(seq) FROM events e WHERE e.partition = parts.partition)
FROM parts WHERE partition IS NOT NULL
"""


@dataclass(frozen=True)
class Lag:
    """How far one projector trails the events copy in one partition."""

    projector: str
    partition: str
    checkpoint: int
    head: int

    @property
    def behind(self) -> int:
        """Events not yet applied (by seq distance, an upper bound)."""
        return max(self.head - self.checkpoint, 0)


def lags(conn: psycopg.Connection[Any], projectors: Sequence[Projector]) -> list[Lag]:
    """Every (projector, partition) pair with its checkpoint and the partition's last seq."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(PARTITION_HEADS)
        heads: dict[str, int] = dict(cur.fetchall())
        cur.execute("SELECT projector, partition, seq FROM projector_checkpoints")
        checkpoints = {(p, part): seq for p, part, seq in cur.fetchall()}
    return [
        Lag(projector.name, partition, checkpoints.get((projector.name, partition), 0), head)
        for projector in projectors
        for partition, head in sorted(heads.items())
    ]


REPLICATED = "SELECT position FROM events WHERE position = ANY(%s)"


def replicated(conn: psycopg.Connection[Any], positions: Sequence[int]) -> set[int]:
    """Which of `positions` are in the replica's events copy."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return {row[0] for row in cur.execute(REPLICATED, (list(positions),))}


PROJECTED = """
SELECT e.seq IS NOT NULL AND (
    SELECT count(*) FROM projector_checkpoints AS c
    WHERE c.partition = e.partition AND c.projector = ANY(%(projectors)s) AND c.seq >= e.seq
) = cardinality(%(projectors)s::text[])
FROM (SELECT 1) AS one LEFT JOIN events AS e ON e.position = %(position)s
"""
# min over projectors of the partition's applied position; across stores, the best one.
POSITION = """
SELECT coalesce(max(reached), 0) FROM (
    SELECT c.partition, min(c.position) AS reached
    FROM projector_checkpoints AS c
    WHERE c.projector = ANY(%(projectors)s)
      AND (%(partition)s::text IS NULL OR c.partition = %(partition)s)
    GROUP BY c.partition
    HAVING count(*) = cardinality(%(projectors)s::text[])
) AS partitions
"""


async def is_projected(
    conn: psycopg.AsyncConnection[Any], projectors: list[str], position: int
) -> bool:
    """Whether the event at `position` is in the events copy and every one of
    `projectors` has applied it in its partition."""
    cursor = await conn.execute(PROJECTED, {"projectors": projectors, "position": position})
    row = await cursor.fetchone()
    return row is not None and bool(row[0])


async def read_position(
    conn: psycopg.AsyncConnection[Any], projectors: list[str], partition: str | None
) -> int:
    """The highest position every one of `projectors` has applied in `partition` (across
    partitions when None: the partition that got furthest)."""
    cursor = await conn.execute(POSITION, {"projectors": projectors, "partition": partition})
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
