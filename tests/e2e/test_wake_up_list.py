"""The wake-up list: one Redis call per batch at the sender, no event left to the sweep
when a wake-up reaches the worker before its event reaches the replica, and none lost
when a worker is killed (kill -9) holding a wake-up it took but never served."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import dramatiq.broker
import psycopg
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from inventory.domain.context import Context
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from inventory.service import Decision
from inventory.service.result import CommandResult
from inventory.worker.broker import wake_up_key
from inventory.worker.wakeups import MAX_WAITING, entry, push, wake, wake_committed
from tests.e2e.api_servers import api_key, api_servers
from tests.e2e.reading import Client, wait_until
from tests.projection_helpers import (
    append_counted,
    checkpoint_of,
    heads_of,
    new_stream,
    wait_replicated,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def broker(settings: Settings) -> Iterator[RedisBroker]:
    """The global broker on a namespace of this test's own, the session's restored after."""
    previous = dramatiq.broker.global_broker
    own = RedisBroker(url=settings.redis_url, namespace=f"wake-{uuid.uuid4().hex[:8]}-dramatiq")
    dramatiq.set_broker(own)
    yield own
    own.client.delete(wake_up_key(own))
    own.close()
    dramatiq.broker.global_broker = previous


def start_worker(
    env: dict[str, str], broker: RedisBroker, log: Path, sweep: str
) -> subprocess.Popen[bytes]:
    """A worker process on `broker`'s namespace, started (its log says so)."""
    namespace = broker.namespace.removesuffix("-dramatiq")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory", "worker", "--threads", "1"],
            env={
                **os.environ,
                **env,
                "INVENTORY_REDIS_NAMESPACE": namespace,
                "INVENTORY_SWEEP_INTERVAL_SECONDS": sweep,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_until(lambda: b"worker started" in log.read_bytes(), 60)
    return process


@pytest.fixture
def sweepless(
    broker: RedisBroker, server_env: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker whose sweep never runs during the test: only a wake-up can project."""
    worker = start_worker(server_env, broker, tmp_path / "sweepless.log", sweep="3600")
    yield worker
    worker.kill()  # if the test has not stopped it
    worker.wait(30)


def versions(settings: Settings, store: str) -> list[int]:
    """The versions the store's streams are projected to."""
    return [version for _, version, _ in heads_of(settings.replica_url, store)]


def assert_projected(settings: Settings, store: str, stream: str) -> None:
    """The store's one stream projected to its 3 events, the checkpoint at the last."""
    rows = heads_of(settings.replica_url, store)
    assert [(name, version) for name, version, _ in rows] == [(stream, 3)]
    assert checkpoint_of(settings.replica_url, store) == rows[0][2]


def test_one_call_names_each_partition_once_and_the_list_stays_bounded(
    broker: RedisBroker, store_id: str
) -> None:
    key = wake_up_key(broker)
    wake([f"{store_id}-b", store_id, None, f"{store_id}-b", store_id])
    assert broker.client.lrange(key, 0, -1) == [b"", store_id.encode(), f"{store_id}-b".encode()]
    broker.client.delete(key)

    # A committed command's wake-ups carry its last position, one per store it touched.
    sale = Decision(CommandResult("c1", 41, [], []), Context(), frozenset({store_id}))
    transfer = Decision(CommandResult("c2", 42, [], []), Context(), frozenset({store_id, "x"}))
    wake_committed([sale, transfer, sale])
    assert broker.client.lrange(key, 0, -1) == [
        f"{store_id} 41".encode(),
        f"{store_id} 42".encode(),
        b"x 42",
    ]
    broker.client.delete(key)

    # With no worker to take them, the oldest wake-ups go: the sweep covers what they named.
    wake(f"{store_id}-{n:05d}" for n in range(MAX_WAITING + 10))
    assert broker.client.llen(key) == MAX_WAITING
    assert broker.client.lindex(key, -1) == f"{store_id}-{MAX_WAITING + 9:05d}".encode()


async def test_a_wake_up_that_reaches_the_worker_before_its_event_reaches_the_replica_waits(
    broker: RedisBroker, sweepless: subprocess.Popen[bytes], settings: Settings, store_id: str
) -> None:
    key = wake_up_key(broker)
    try:
        stream = new_stream(store_id)
        async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
            async with conn.transaction():
                positions = await append_counted(conn, stream, store_id, count=3)
                # Sent before the commit, the wake-up surely beats the events to the replica
                # (from an API it does most of the time: it leaves at the commit).
                push(broker.client, key, [entry(store_id, max(positions))])
                wait_until(lambda: broker.client.llen(key) == 0, 10)
                time.sleep(0.5)  # a round that did not wait would run now, and find nothing
        wait_until(lambda: versions(settings, store_id) == [3], 30)
    finally:
        sweepless.terminate()
        sweepless.wait(30)
    assert_projected(settings, store_id, stream)


def blocked_in_pop(client: redis.Redis) -> bool:
    """Whether a client of this Redis waits in BLPOP (only the test's worker pops here)."""
    return any(c.get("cmd") == "blpop" and "b" in c.get("flags", "") for c in client.client_list())


async def test_a_wake_up_taken_by_a_worker_killed_before_its_round_loses_no_event(
    broker: RedisBroker,
    server_env: dict[str, str],
    settings: Settings,
    store_id: str,
    tmp_path: Path,
) -> None:
    # Its sweep never runs: only the wake-up could project the store.
    doomed = start_worker(server_env, broker, tmp_path / "doomed.log", sweep="3600")
    try:
        for _ in range(200):  # freeze it inside its blocking pop, so it takes the wake-up
            os.kill(doomed.pid, signal.SIGSTOP)
            if blocked_in_pop(broker.client):
                break
            os.kill(doomed.pid, signal.SIGCONT)
            time.sleep(0.05)
        else:
            pytest.fail("the worker never waited in its blocking pop")
        stream = new_stream(store_id)
        async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
            async with conn.transaction():
                positions = await append_counted(conn, stream, store_id, count=3)
        wait_replicated(settings.replica_url, positions)
        push(broker.client, wake_up_key(broker), [store_id])
        wait_until(lambda: broker.client.llen(wake_up_key(broker)) == 0, 10)
    finally:
        doomed.kill()  # SIGKILL, stopped or not: the wake-up it took dies with it
        doomed.wait(30)
    assert checkpoint_of(settings.replica_url, store_id) == 0

    # The next worker (restarted, or another one) catches the store up from its checkpoint.
    heir = start_worker(server_env, broker, tmp_path / "heir.log", sweep="1")
    try:
        wait_until(lambda: versions(settings, store_id) == [3], 60)
    finally:
        heir.terminate()
        heir.wait(30)
    assert_projected(settings, store_id, stream)


def test_an_api_wakes_each_store_a_command_wrote_with_the_commands_last_position(
    server_env: dict[str, str], settings: Settings, store_id: str, tmp_path: Path
) -> None:
    namespace = f"test-{uuid.uuid4().hex[:8]}"  # no worker takes from its list
    key = f"{namespace}-dramatiq:wake-ups"
    client = redis.Redis.from_url(settings.redis_url)
    admin = api_key(settings, Role.ADMIN, ["*"], "wake-up positions")
    try:
        with api_servers(server_env, tmp_path, count=1, INVENTORY_REDIS_NAMESPACE=namespace) as (
            api,
        ):
            till = Client(api, admin)
            sku = f"W-{store_id}"
            opened = till.command("/v1/stores", {"id": store_id, "name": "Wake"})
            product = till.command("/v1/products", {"sku": sku, "name": "Widget"})
            lines = [{"sku": sku, "quantity": 3}]
            received = till.command(f"/v1/stores/{store_id}/receipts", {"lines": lines})
            sale = {"sale_id": "w1", "lines": lines}
            sold = till.command(f"/v1/stores/{store_id}/sales", sale)
            expected = [
                f"{store_id} {opened}",
                f" {product}",  # a product's events belong to no store
                f"{store_id} {received}",
                f"{store_id} {sold}",
            ]
            wait_until(lambda: client.llen(key) >= len(expected), 10)
            entries = client.lrange(key, 0, -1)
    finally:
        client.delete(key)
        client.close()
    assert entries == [entry.encode() for entry in expected]
