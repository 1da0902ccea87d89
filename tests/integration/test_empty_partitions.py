"""A catch-up of a partition with no events leaves what a rebuild leaves: no checkpoints."""

from __future__ import annotations

import io
import uuid
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from inventory.cli import projections as admin
from inventory.projectors.catch_up import catch_up_partitions
from inventory.projectors.engine import project
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.settings import Settings
from tests.projection_helpers import append_counted, new_stream, wait_replicated

CHECKPOINTS = """
SELECT projector, partition, seq, position FROM projector_checkpoints
WHERE partition = ANY(%s) ORDER BY projector, partition
"""


def _checkpoints(settings: Settings, partitions: list[str]) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.replica_url) as conn:
        return conn.execute(CHECKPOINTS, (partitions,)).fetchall()


async def test_a_catch_up_of_an_empty_partition_leaves_the_checkpoints_a_rebuild_leaves(
    settings: Settings,
) -> None:
    busy, empty = (f"s{uuid.uuid4().hex[:10]}" for _ in range(2))
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        positions = await append_counted(conn, new_stream(busy), busy, 3)
        await conn.commit()
    wait_replicated(settings.replica_url, positions)
    names = [p.name for p in PROJECTORS]

    with ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as pool:
        with pool.connection() as conn:  # the worker's round, woken for both stores
            applied = catch_up_partitions(conn, PROJECTORS, [empty, busy])
        # ... and the one-projector path (a projector a rebuild holds, containment).
        alone = [project(pool, projector, empty) for projector in PROJECTORS]
    caught_up = _checkpoints(settings, [busy, empty])

    assert applied == dict.fromkeys(names, 3)
    assert alone == [0] * len(PROJECTORS)
    assert {partition for _, partition, _, _ in caught_up} == {busy}
    assert admin.rebuild(settings.replica_url, names, out=io.StringIO()) == 0
    assert _checkpoints(settings, [busy, empty]) == caught_up
