"""A replica that subscribes after thousands of events exist builds the same read models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import project
from inventory.projectors.lag import lags
from inventory.readmodels.stream_heads import StreamHeads
from inventory.runtime.migrations import (
    ensure_subscription,
    migrate,
    order_initial_copy,
    sql_directory,
)
from inventory.runtime.settings import Settings
from tests.projection_helpers import append_counted, wait_replicated


@pytest.fixture
def late_replica(settings: Settings) -> Iterator[str]:
    """A second replica database on the replica server, subscribed only now."""
    name = f"late_{uuid.uuid4().hex[:8]}"
    admin = settings.replica_admin_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    migrate(url, sql_directory("projections"))
    yield url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SUBSCRIPTION IF EXISTS "{name}"')
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def project_all(url: str) -> list[tuple[str, int]]:
    with ConnectionPool(url, min_size=1, max_size=1) as pool:
        with pool.connection() as conn:
            partitions = {lag.partition for lag in lags(conn, [StreamHeads()])}
        for partition in partitions:
            project(pool, StreamHeads(), partition)
        with pool.connection() as conn:
            return conn.execute(
                "SELECT stream, version FROM stream_heads ORDER BY stream"
            ).fetchall()


async def test_a_late_replica_builds_the_same_read_models(
    settings: Settings, late_replica: str
) -> None:
    stores = [f"late-{uuid.uuid4().hex[:6]}" for _ in range(4)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for i in range(400):
            async with conn.transaction():
                store = stores[i % 4]
                positions += await append_counted(conn, f"late-{store}-{i % 37}", store, 25)
    assert len(positions) == 10_000
    wait_replicated(settings.replica_url, positions)

    # Returns once the initial copy is in and in position order (order_initial_copy).
    ensure_subscription(
        late_replica, settings.subscription_conninfo, name=late_replica.rsplit("/", 1)[1]
    )
    wait_replicated(late_replica, positions, timeout=120)
    deadline = time.monotonic() + 60
    while True:  # the initial copy must finish before the apply worker streams
        with psycopg.connect(late_replica) as conn:
            pending = conn.execute(
                "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'"
            ).fetchone()
        if pending == (0,) or time.monotonic() > deadline:
            break
        time.sleep(0.1)

    ours = {row for row in project_all(late_replica) if row[0].startswith("late-")}
    theirs = {row for row in project_all(settings.replica_url) if row[0] in dict(ours)}
    assert ours == theirs
    assert len(ours) == 4 * 37  # every (store, stream) pair of the 400 commands
    with psycopg.connect(late_replica) as conn:
        inversions = conn.execute(
            "SELECT count(*) FROM events a JOIN events b ON a.stream = b.stream"
            " AND a.version < b.version AND a.seq > b.seq WHERE a.stream LIKE 'late-%'"
        ).fetchone()
    assert inversions == (0,)


def test_the_initial_copy_is_put_in_position_order_once_and_streamed_rows_stay_after_it(
    settings: Settings,
) -> None:
    name = f"order_{uuid.uuid4().hex[:8]}"
    admin = settings.replica_admin_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url, sql_directory("projections"))
        columns = "position, id, stream, version, type, store, sku, data, metadata, occurred_at,"
        row = columns + " recorded_at) VALUES (%s, gen_random_uuid(), 's', %s, 't', 'x', NULL,"
        insert = "INSERT INTO events (" + row + " '{}', '{}', now(), now())"
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.transaction():  # the "copy": heap order, versions 3, 1, 2
                conn.execute("SET LOCAL session_replication_role = replica")
                for position in (30, 10, 20):
                    conn.execute(insert, (position, position // 10))
            with conn.transaction():  # a streamed row, committed after the copy
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute(insert, (40, 4))

            order_initial_copy(conn, "test")
            order_initial_copy(conn, "test")  # done once: a no-op

            rows = conn.execute("SELECT version FROM events ORDER BY seq").fetchall()
            recorded = conn.execute("SELECT rows FROM initial_copies").fetchall()
        assert [version for (version,) in rows] == [1, 2, 3, 4]
        assert recorded == [(3,)]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
