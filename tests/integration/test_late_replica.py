"""A replica that subscribes after thousands of events exist builds the same read models."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import lags, project
from inventory.projectors.stream_heads import StreamHeads
from inventory.runtime.migrations import ensure_subscription, migrate, sql_directory
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


# Known defect (issue 3 stays open): the subscription's initial copy reads the primary's
# heap in physical order, and concurrent inserts can place a stream's later version on an
# earlier page (each backend fills its own target page; the free space map hands back
# pages others left half full). The copy then gives it a lower `seq`, and a projector that
# folds in `seq` order would apply it first. Fix: renumber the copied rows in position
# order once the table is synchronised, before any projector reads them.
@pytest.mark.xfail(
    strict=False, reason="initial copy in heap order can invert a stream's versions in seq"
)
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
