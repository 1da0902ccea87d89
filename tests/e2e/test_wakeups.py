"""Wake-ups through the real broker to a real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from inventory.runtime.settings import Settings
from inventory.worker.broker import build_broker
from inventory.worker.wakeups import wake
from tests.projection_helpers import (
    append_counted,
    checkpoint_of,
    heads_of,
    new_stream,
    wait_replicated,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def worker(server_env: dict[str, str], settings: Settings) -> Iterator[None]:
    """A worker process whose sweep never runs during the test: only wake-ups project."""
    build_broker(settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "inventory", "worker", "--threads", "4"],
        env={**os.environ, **server_env, "INVENTORY_SWEEP_INTERVAL_SECONDS": "3600"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield
    process.terminate()
    process.wait(30)


async def test_duplicate_and_reordered_wake_ups_change_nothing(
    worker: None, settings: Settings, store_id: str
) -> None:
    other = f"{store_id}-other"
    streams = {store_id: new_stream(store_id), other: new_stream(other)}
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for partition, stream in streams.items():
            async with conn.transaction():
                positions += await append_counted(conn, stream, partition, count=3)
    wait_replicated(settings.replica_url, positions)

    for _ in range(5):
        wake([other, store_id, store_id, None, other])

    deadline = time.monotonic() + 60
    while any(not heads_of(settings.replica_url, p) for p in streams):
        assert time.monotonic() < deadline, "the wake-ups were never acted on"
        time.sleep(0.1)
    time.sleep(0.5)  # let the duplicate messages run too; they must find nothing to do
    for partition, stream in streams.items():
        rows = heads_of(settings.replica_url, partition)
        assert [(s, v) for s, v, _ in rows] == [(stream, 3)]
        assert checkpoint_of(settings.replica_url, partition) == rows[0][2]
