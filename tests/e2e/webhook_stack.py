"""An API and a worker that may send webhooks to 127.0.0.0/8, the worker killable, and
the steps the webhook tests share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import TEST_ENV, ApiServer, api_servers
from tests.e2e.reading import Client, Pos, wait_until

LOOPBACK = {"INVENTORY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


class Worker:
    """`inventory worker` on a namespace, startable again after a kill -9."""

    def __init__(self, server_env: dict[str, str], namespace: str, log: Path) -> None:
        self.env = {
            **os.environ,
            **server_env,
            **TEST_ENV,
            **LOOPBACK,
            "INVENTORY_REDIS_NAMESPACE": namespace,
            "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
            "INVENTORY_WORKER_METRICS_PORT": "0",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a worker process."""
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory", "worker"],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@contextmanager
def running_worker(server_env: dict[str, str], folder: Path, **env: str) -> Iterator[Worker]:
    """A started worker on a Redis namespace of its own (with `env` added), allowed to
    send to 127.0.0.0/8; stopped after."""
    worker = Worker(server_env, f"test-{uuid.uuid4().hex[:8]}", folder / "worker.log")
    worker.env.update(env)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def api_beside(server_env: dict[str, str], worker: Worker, folder: Path) -> Iterator[ApiServer]:
    """One API process on `worker`'s namespace, with the same allowance."""
    namespace = worker.env["INVENTORY_REDIS_NAMESPACE"]
    with api_servers(
        server_env, folder, count=1, INVENTORY_REDIS_NAMESPACE=namespace, **LOOPBACK
    ) as apis:
        yield apis[0]


def subscribe(client: Client, url: str, **fields: Any) -> dict[str, Any]:
    """Create a webhook; its JSON (with the secret)."""
    response = client.post("/v1/webhooks", {"url": url, **fields}, idempotent=False)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def unsubscribe(client: Client, webhook_id: str) -> None:
    """Delete a webhook, so no later test's worker keeps trying it."""
    response = client.post(f"/v1/webhooks/{webhook_id}", None, idempotent=False, method="DELETE")
    assert response.status_code in (204, 404), response.text


def open_with_stock(pos: Pos, store: str, sku: str, quantity: int) -> None:
    """Open `store`, register `sku` and receive `quantity` of it."""
    assert pos.post("/v1/stores", {"id": store, "name": store}, key=None).status_code == 201
    created = pos.post("/v1/products", {"sku": sku, "name": f"Product {sku}"}, key=None)
    assert created.status_code in (201, 409), created.text
    lines = [{"sku": sku, "quantity": quantity}]
    response = pos.post(f"/v1/stores/{store}/receipts", {"lines": lines})
    assert response.status_code == 201, response.text


def sell(pos: Pos, store: str, sku: str, quantity: int, *, offline: bool = False) -> None:
    """Record a sale (offline: accepted even when it oversells)."""
    body = {"sale_id": uuid.uuid4().hex, "lines": [{"sku": sku, "quantity": quantity}]}
    response = pos.post(f"/v1/stores/{store}/sales", {**body, "offline": offline})
    assert response.status_code == 201, response.text


def store_seqs(settings: Settings, store: str, count: int) -> list[int]:
    """The seqs of the store's events on the replica, once `count` of them are there."""
    query = "SELECT seq FROM events WHERE partition = %s ORDER BY seq"

    def seqs() -> list[int]:
        with psycopg.connect(settings.replica_url) as conn:
            return [row[0] for row in conn.execute(query, (store,)).fetchall()]

    wait_until(lambda: len(seqs()) >= count, 60)
    return seqs()


def primary_events(settings: Settings, store: str) -> int:
    """How many events of `store` the primary holds."""
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE store = %s", (store,)).fetchone()
    assert row is not None
    return int(row[0])


def deliveries(client: Client, webhook_id: str) -> list[dict[str, Any]]:
    """The webhook's delivery log, newest first."""
    response = client.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
