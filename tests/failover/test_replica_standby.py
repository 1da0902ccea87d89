"""A physical standby of the replica serves queries, reports and the feed (readiness by
its replay lag); killed, an API with a two-host read URL keeps answering from the replica."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key, api_servers
from tests.e2e.feed_helpers import FeedClient, partition_seqs
from tests.e2e.reading import Client, start_worker
from tests.failover.scale_sales import stocked_store
from tests.failover.scale_servers import read_url, replica_standby, wait

pytestmark = [pytest.mark.failover, pytest.mark.e2e]

SKUS = ["RS1", "RS2", "RS3"]


def sell(client: Client, store: str, count: int) -> int:
    """`count` one-unit sales; the last one's position."""
    position = 0
    for _ in range(count):
        body = {"sale_id": uuid.uuid4().hex[:12], "lines": [{"sku": SKUS[0], "quantity": 1}]}
        position = client.command(f"/v1/stores/{store}/sales", body)
    return position


def served_by(url: str, application: str) -> int:
    """How many connections of `application` the server at `url` holds."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def report_done(client: Client) -> dict[str, Any]:
    """Request a stock report (202) and poll it until the worker has built it."""
    requested = client.post("/v1/reports", {"kind": "stock"}, idempotent=False)
    assert requested.status_code == 202, requested.text
    path = f"/v1/reports/{requested.json()['id']}"
    found: dict[str, Any] = {}

    def done() -> bool:
        response = client.get(path)
        assert response.status_code == 200, response.text
        found.update(response.json())
        return bool(found["status"] == "done")

    wait(done, "the report built", 60)
    return found


async def feed_from(api: ApiServer, key: str, store: str, expected: list[int]) -> list[int]:
    """The store's events from the start (`after=0`), as the feed serves them."""
    url = f"ws://127.0.0.1:{api.port}/v1/feed?stores={store}&after=0"
    client = await FeedClient.connect(url, key)
    try:
        await client.until(lambda c: len(c.seqs(store)) >= len(expected), 60)
    finally:
        await client.close()
    return client.seqs(store)


def reads_back(client: Client, store: str) -> float:
    """Seconds until a stock read answers 200 again (then 20 in a row must too)."""
    started = time.monotonic()

    def answers() -> bool:
        try:
            return client.get(f"/v1/stores/{store}/stock").status_code == 200
        except httpx.TransportError:
            return False

    waited = wait(answers, "reads after the standby's loss", 60)
    statuses = [client.get(f"/v1/stores/{store}/stock").status_code for _ in range(20)]
    assert statuses == [200] * 20, statuses
    return min(waited, time.monotonic() - started)


def test_a_replica_standby_serves_and_its_loss_is_survived_by_a_two_host_read_url(
    topology: EmbeddedTopology, server_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    store = f"rs{uuid.uuid4().hex[:8]}"
    stocked_store(settings, store, SKUS, 100)
    key = api_key(settings, Role.ADMIN, ["*"], "standby test")
    namespace = f"standby-{uuid.uuid4().hex[:8]}"
    replica_port = int(conninfo_to_dict(settings.replica_url)["port"])
    admin_url = server_env["INVENTORY_REPLICA_ADMIN_URL"]
    with replica_standby(admin_url, topology.secrets["postgres"]) as standby:
        only_standby = read_url(settings.replica_url, standby.port)
        both = read_url(settings.replica_url, standby.port, replica_port, balance=True)
        env = {"INVENTORY_REDIS_NAMESPACE": namespace, "INVENTORY_RATE_LIMIT_ADMIN": "100000/60"}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        worker = start_worker(server_env, namespace, tmp_path / "worker.log")
        try:
            with (
                api_servers(
                    server_env, tmp_path / "a", 1, INVENTORY_READ_URL=only_standby, **env
                ) as (on_standby,),
                api_servers(server_env, tmp_path / "b", 1, INVENTORY_READ_URL=both, **env) as (
                    balanced,
                ),
            ):
                a, b = Client(on_standby, key), Client(balanced, key)
                last = sell(a, store, 5)
                stock = a.get(f"/v1/stores/{store}/stock", min_position=last)
                assert stock.status_code == 200, stock.text
                standby_admin = read_url(admin_url, standby.port)
                assert served_by(standby_admin, "inventory-replica") >= 1

                ready = a.get("/health/ready")
                assert ready.status_code == 200, ready.text
                assert ready.json()["checks"]["replica"]["detail"]["standby"] is True
                assert report_done(a)["rows"], "the stock report has the store's levels"
                expected = partition_seqs(settings, store)
                seqs = asyncio.run(feed_from(on_standby, key, store, expected))
                assert seqs == expected

                standby.process.kill()  # type: ignore[union-attr]
                standby.process.wait(15)  # type: ignore[union-attr]
                lost = time.monotonic()
                again = reads_back(b, store)
                print(f"\nstandby lost: reads again after {again:.2f} s")  # noqa: T201
                position = sell(b, store, 3)
                fresh = b.get(f"/v1/stores/{store}/stock", min_position=position)
                assert fresh.status_code == 200, fresh.text
                took = time.monotonic() - lost
                print(f"standby lost: a sale read back in {took:.2f} s")  # noqa: T201
                wait(lambda: a.get("/health/ready").status_code == 503, "readiness failing", 30)
                assert "replica" in a.get("/health/ready").json()["failing"]
        finally:
            worker.terminate()
            worker.wait(30)
