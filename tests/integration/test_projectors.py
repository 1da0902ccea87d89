"""The projector engine on the replica: commit order, exactly-once, idempotent wake-ups."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.projectors.backlog import backlogs
from inventory.projectors.engine import lags, project
from inventory.projectors.stream_heads import StreamHeads
from inventory.runtime.settings import Settings
from tests.projection_helpers import (
    append_counted,
    checkpoint_of,
    heads_of,
    new_stream,
    wait_replicated,
)

heads = StreamHeads()


@pytest.fixture(scope="module")
def replica_pool(settings: Settings) -> ConnectionPool:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=4, open=True) as pool:
        yield pool


async def test_out_of_order_commits_are_projected_once_in_commit_order(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    stream_a, stream_b = new_stream(store_id), new_stream(store_id)
    conn_a = await psycopg.AsyncConnection.connect(settings.primary_url)
    conn_b = await psycopg.AsyncConnection.connect(settings.primary_url)
    async with conn_a, conn_b:
        async with conn_a.transaction():
            [position_a] = await append_counted(conn_a, stream_a, store_id)
            async with conn_b.transaction():
                [position_b] = await append_counted(conn_b, stream_b, store_id)
            wait_replicated(settings.replica_url, [position_b])
            project(replica_pool, heads, store_id)
            assert [row[0] for row in heads_of(settings.replica_url, store_id)] == [stream_b]
        wait_replicated(settings.replica_url, [position_a])
        project(replica_pool, heads, store_id)

    assert position_a < position_b  # A took its position first...
    with psycopg.connect(settings.replica_url) as conn:
        seqs = dict(
            conn.execute(
                "SELECT position, seq FROM events WHERE position = ANY(%s)",
                ([position_a, position_b],),
            ).fetchall()
        )
    assert seqs[position_b] < seqs[position_a]  # ...but B committed, and was applied, first
    rows = heads_of(settings.replica_url, store_id)
    assert sorted((stream, version) for stream, version, _ in rows) == sorted(
        [(stream_a, 1), (stream_b, 1)]
    )
    assert checkpoint_of(settings.replica_url, store_id) == seqs[position_a]


async def test_repeated_and_reordered_runs_change_nothing(
    settings: Settings, store_id: str, replica_pool: ConnectionPool, resources: object
) -> None:
    stream = new_stream(store_id)
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            positions = await append_counted(conn, stream, store_id, count=5)
    wait_replicated(settings.replica_url, positions)

    assert project(replica_pool, heads, store_id) == 5
    first = heads_of(settings.replica_url, store_id)
    assert project(replica_pool, heads, store_id) == 0
    assert project(replica_pool, heads, store_id, batch_size=2) == 0

    assert heads_of(settings.replica_url, store_id) == first
    assert first[0][1] == 5


async def test_batches_smaller_than_the_backlog_catch_up_completely(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    streams = [new_stream(store_id) for _ in range(7)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for stream in streams:
            async with conn.transaction():
                positions += await append_counted(conn, stream, store_id, count=3)
    wait_replicated(settings.replica_url, positions)

    assert project(replica_pool, heads, store_id, batch_size=4) == 21

    assert [row[1] for row in heads_of(settings.replica_url, store_id)] == [3] * 7
    with replica_pool.connection() as conn:
        lag = next(x for x in lags(conn, [heads]) if x.partition == store_id)
    assert lag.behind == 0


async def test_backlogs_count_each_partitions_unprojected_events_up_to_the_limit(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    behind, caught_up, deep = f"{store_id}-behind", f"{store_id}-caught-up", f"{store_id}-deep"
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for partition, count in ((caught_up, 4), (behind, 3), (deep, 9)):
            positions += await append_counted(conn, new_stream(partition), partition, count)
    wait_replicated(settings.replica_url, positions)
    project(replica_pool, heads, caught_up)
    project(replica_pool, heads, behind, batch_size=2)  # every batch commits: none left
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        positions = await append_counted(conn, new_stream(behind), behind, count=2)
    wait_replicated(settings.replica_url, positions)

    async with await psycopg.AsyncConnection.connect(settings.replica_url) as conn:
        found = await backlogs(conn, ["stream_heads"], limit=5, max_age=3600)
        aged = await backlogs(conn, ["stream_heads"], limit=5, max_age=0)

    mine = {b.partition: b.events for b in found if b.partition.startswith(store_id)}
    assert mine == {behind: 2, deep: 5}
    assert {b.partition: b.events for b in aged if b.partition.startswith(store_id)} == {
        behind: None,
        deep: None,
    }
