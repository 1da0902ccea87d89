"""How far behind each projector partition is: unprojected events and the oldest one's age.

`/health/ready` runs this on every probe, against an events copy of millions of rows, so
each figure is a bounded index probe: one per partition to find the partitions (a loose
index scan of `events_partition_seq`), then per projector and partition one probe for the
oldest event after the checkpoint and an index range of at most `limit` entries to count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import tuple_row

BACKLOGS = """
WITH RECURSIVE parts AS (
    (SELECT partition FROM events ORDER BY partition LIMIT 1)
    UNION ALL
    SELECT (SELECT e.partition FROM events e WHERE e.partition > parts.partition
            ORDER BY e.partition LIMIT 1)
    FROM parts WHERE parts.partition IS NOT NULL
), cursors AS (
    SELECT p.name AS projector, parts.partition, coalesce(c.seq, 0) AS checkpoint
    FROM parts
    CROSS JOIN unnest(%(projectors)s::text[]) AS p(name)
    LEFT JOIN projector_checkpoints c ON c.projector = p.name AND c.partition = parts.partition
    WHERE parts.partition IS NOT NULL
)
SELECT cursors.projector, cursors.partition, behind.events, oldest.age
FROM cursors
CROSS JOIN LATERAL (
    SELECT count(*) AS events FROM (
        SELECT FROM events e
        WHERE e.partition = cursors.partition AND e.seq > cursors.checkpoint
        ORDER BY e.seq LIMIT %(limit)s
    ) AS unprojected
) AS behind
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM clock_timestamp() - e.recorded_at)::float8 AS age
    FROM events e
    WHERE e.partition = cursors.partition AND e.seq > cursors.checkpoint
    ORDER BY e.seq LIMIT 1
) AS oldest
ORDER BY oldest.age DESC
"""


@dataclass(frozen=True)
class Backlog:
    """One projector partition with events not yet projected."""

    projector: str
    partition: str
    events: int  # capped at the `limit` given to `backlogs`
    oldest_age_seconds: float  # since the oldest unprojected event was recorded

    def describe(self) -> str:
        """`stream_heads/store-1: 12 events, oldest 75.2 s`, for health answers."""
        return (
            f"{self.projector}/{self.partition or '(global)'}: {self.events} events, "
            f"oldest {self.oldest_age_seconds:.1f} s"
        )


async def backlogs(
    conn: psycopg.AsyncConnection[Any], projectors: Sequence[str], limit: int
) -> list[Backlog]:
    """Every (projector, partition) with unprojected events, oldest first; counts stop at
    `limit`, so a deep backlog costs no more than a shallow one."""
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(BACKLOGS, {"projectors": list(projectors), "limit": limit})
        rows = await cur.fetchall()
    return [Backlog(*row) for row in rows]
