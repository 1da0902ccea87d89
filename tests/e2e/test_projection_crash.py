"""A projector killed mid-transaction, and a worker whose Redis is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import project, reset
from inventory.readmodels.stream_heads import StreamHeads
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.runtime.valkey_server import EmbeddedValkey
from tests.projection_helpers import (
    append_counted,
    checkpoint_of,
    heads_of,
    new_stream,
    wait_replicated,
)

pytestmark = pytest.mark.e2e

# A projector process that applies its batch, says so, and hangs before committing.
HANGING_PROJECTOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from psycopg_pool import ConnectionPool
    from inventory.projectors.engine import project
    from inventory.readmodels.stream_heads import StreamHeads

    class HangsBeforeCommit(StreamHeads):
        def apply(self, cur, events):
            super().apply(cur, events)
            Path(sys.argv[3]).write_text("applied")
            time.sleep(3600)

    with ConnectionPool(sys.argv[1], min_size=1, max_size=1) as pool:
        project(pool, HangsBeforeCommit(), sys.argv[2])
""")


async def test_a_projector_killed_before_commit_leaves_its_checkpoint_and_catches_up(
    settings: Settings, store_id: str, tmp_path: Path
) -> None:
    streams = [new_stream(store_id) for _ in range(3)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for stream in streams:
            async with conn.transaction():
                positions += await append_counted(conn, stream, store_id, count=2)
    wait_replicated(settings.replica_url, positions)
    marker = tmp_path / "applied"

    hanging = subprocess.Popen(
        [sys.executable, "-c", HANGING_PROJECTOR, settings.replica_url, store_id, str(marker)]
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert hanging.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    hanging.send_signal(signal.SIGKILL)
    hanging.wait(10)

    assert checkpoint_of(settings.replica_url, store_id) == 0
    assert heads_of(settings.replica_url, store_id) == []

    with ConnectionPool(settings.replica_url, min_size=1, max_size=1) as pool:
        assert project(pool, StreamHeads(), store_id) == 6
        after_restart = heads_of(settings.replica_url, store_id)
        with pool.connection() as conn:
            reset(conn, StreamHeads())
        project(pool, StreamHeads(), store_id)
    assert after_restart == heads_of(settings.replica_url, store_id)
    assert [version for _, version, _ in after_restart] == [2, 2, 2]


async def test_with_redis_stopped_the_sweep_still_projects_every_event(
    server_env: dict[str, str], settings: Settings, store_id: str, tmp_path: Path
) -> None:
    redis = EmbeddedValkey(tmp_path / "redis", free_port(), "pw", durable=False)
    redis.start()
    redis.wait_ready()
    worker = subprocess.Popen(
        [sys.executable, "-m", "inventory", "worker", "--threads", "1"],
        env={
            **os.environ,
            **server_env,
            "INVENTORY_REDIS_URL": redis.url,
            "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        redis.stop()
        stream = new_stream(store_id)
        async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
            async with conn.transaction():
                positions = await append_counted(conn, stream, store_id, count=4)

        deadline = time.monotonic() + 60
        while heads_of(settings.replica_url, store_id) == []:
            assert worker.poll() is None, "the worker died without Redis"
            assert time.monotonic() < deadline, "the sweep never projected the events"
            time.sleep(0.2)
        wait_replicated(settings.replica_url, positions)
        assert [row[1] for row in heads_of(settings.replica_url, store_id)] == [4]
    finally:
        worker.terminate()
        worker.wait(30)
        redis.stop()
