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


async def test_a_burst_of_wake_ups_for_one_store_leaves_none_of_its_events_behind(
    worker: None, settings: Settings, store_id: str
) -> None:
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for _ in range(40):  # each commit woken at once, as the service does
            async with conn.transaction():
                positions += await append_counted(conn, new_stream(store_id), store_id)
            wake([store_id])
    wait_replicated(settings.replica_url, positions)
    with psycopg.connect(settings.replica_url) as conn:
        row = conn.execute("SELECT max(seq) FROM events WHERE partition = %s", (store_id,))
        last = row.fetchone()
    assert last is not None

    # The sweep never runs: rounds that served several wake-ups at once, and the wake-ups
    # that arrived before their events, must still leave the checkpoint at the last event.
    # The last wake-up may have been served before the replica had the last event, so a
    # few more (as later commits would send) are allowed to finish the job.
    deadline = time.monotonic() + 60
    while checkpoint_of(settings.replica_url, store_id) != last[0]:
        assert time.monotonic() < deadline, "the burst's events were not all projected"
        wake([store_id])
        time.sleep(0.2)
    assert [v for _, v, _ in heads_of(settings.replica_url, store_id)] == [1] * 40


async def test_a_burst_of_wake_ups_over_several_stores_leaves_none_of_their_events_behind(
    worker: None, settings: Settings, store_id: str
) -> None:
    stores = [f"{store_id}-{n}" for n in range(5)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for n in range(50):  # the stores in turn, each commit woken at once
            store = stores[n % len(stores)]
            async with conn.transaction():
                positions += await append_counted(conn, new_stream(store), store)
            wake([store])
    wait_replicated(settings.replica_url, positions)
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT partition, max(seq) FROM events WHERE partition = ANY(%s) GROUP BY partition",
            (stores,),
        )
        last = dict(rows.fetchall())

    # Rounds serve every store woken while the one before ran; as above, a few more
    # wake-ups may be needed for events the replica had not yet when their round read.
    deadline = time.monotonic() + 60
    while any(checkpoint_of(settings.replica_url, s) != last[s] for s in stores):
        assert time.monotonic() < deadline, "the burst's events were not all projected"
        wake(stores)
        time.sleep(0.2)
    for store in stores:
        assert [v for _, v, _ in heads_of(settings.replica_url, store)] == [1] * 10
