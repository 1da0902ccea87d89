"""A webhook disabled after its failures is a metric, not only a log line: the worker's
`inventory_worker_webhooks_disabled_total` counts a real disable (the rule
InventoryWebhookDisabled alerts on it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import ApiServer
from tests.e2e.reading import Client, Pos, wait_until
from tests.e2e.webhook_receiver import Receiver, receiving
from tests.e2e.webhook_stack import (
    Worker,
    api_beside,
    running_worker,
    subscribe,
    unsubscribe,
)

pytestmark = pytest.mark.e2e
METRIC = "inventory_worker_webhooks_disabled_total"


@pytest.fixture(scope="module")
def worker(
    server_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker on its own namespace, serving its metrics on a free loopback port."""
    folder = Path(tmp_path_factory.mktemp("webhook-metric"))
    with running_worker(
        server_env, folder, INVENTORY_WORKER_METRICS_PORT=str(free_port())
    ) as running:
        yield running


@pytest.fixture(scope="module")
def api(
    server_env: dict[str, str], worker: Worker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """The module's API, on the worker's namespace, allowed to target 127.0.0.0/8."""
    with api_beside(
        server_env, worker, Path(tmp_path_factory.mktemp("webhook-metric-api"))
    ) as served:
        yield served


def disabled_count(worker: Worker) -> float | None:
    """The worker's counter, None while its metrics port does not answer yet."""
    port = worker.env["INVENTORY_WORKER_METRICS_PORT"]
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.TransportError:
        return None
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return next(s.value for s in samples if s.name == METRIC)


def test_a_webhook_disabled_after_its_failures_is_counted(
    admin: Client, pos: Pos, settings: Settings, worker: Worker, store_id: str
) -> None:
    wait_until(lambda: disabled_count(worker) is not None, 60)
    assert disabled_count(worker) == 0
    with receiving(Receiver(plan=[503] * 100)) as receiver:
        hook = subscribe(admin, receiver.url, stores=[store_id])
        assert pos.post("/v1/stores", {"id": store_id, "name": "x"}, key=None).status_code == 201
        wait_until(lambda: len(receiver.received) >= 1, 60)
        assert disabled_count(worker) == 0  # a failure, retried: not a disable
        # Three days pass: the first failure is moved back, the next attempt made due.
        with psycopg.connect(settings.primary_admin_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET first_failed_at = now() - interval '3 days 1 min',"
                " next_attempt_at = now() WHERE subscription_id = %s",
                (hook["id"],),
            )
        wait_until(lambda: disabled_count(worker) == 1, 60)
        status = next(i for i in admin.get("/v1/webhooks").json()["items"] if i["id"] == hook["id"])
        unsubscribe(admin, hook["id"])
    assert status["status"] == "disabled"
