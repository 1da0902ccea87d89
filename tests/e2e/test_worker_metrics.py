"""A real worker's metrics endpoint after real events and messages, a second worker on a
taken port, and every metric the alert rules and the dashboard read exported by the
running API and worker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families

from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import TEST_ENV, ApiServer, api_key, api_servers
from tests.e2e.reading import wait_until
from tests.projection_helpers import append_counted, new_stream, wait_replicated
from tests.unit.test_alert_rules import PROMETHEUS_OWN, family, shipped_names

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Worker:
    """`inventory worker` with its metrics on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inventory", "worker", "--threads", "2"],
                env={**os.environ, **env, "INVENTORY_WORKER_METRICS_PORT": str(port)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def scrape(self) -> str:
        """The metrics page's text."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)
        assert response.status_code == 200
        return response.text

    def serving(self) -> bool:
        """Whether the metrics endpoint answers."""
        assert self.process.poll() is None, self.log.read_text()
        try:
            self.scrape()
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.terminate()
        self.process.wait(30)


def send_wake_up(settings: Settings, namespace: str, store: str) -> None:
    """One `wake_projectors` message on `namespace`, through a broker of the test's own
    (the actors bind to the first broker a process builds: not this module's namespace)."""
    broker = RedisBroker(url=settings.redis_url, namespace=f"{namespace}-dramatiq")
    try:
        message = Message(
            queue_name="projections",
            actor_name="wake_projectors",
            args=(store,),
            kwargs={},
            options={},
        )
        broker.enqueue(message)
    finally:
        broker.close()


def samples(text: str) -> Samples:
    """Every sample of a metrics page by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def families(text: str) -> set[str]:
    """Every metric family on a metrics page (declared, even with no sample yet)."""
    return {found.name for found in text_string_to_metric_families(text)}


def where(page: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of `name` whose labels include `labels`."""
    return {
        key: value
        for (sample, key), value in page.items()
        if sample == name and set(labels.items()) <= set(key)
    }


@pytest.fixture(scope="module")
def namespace() -> str:
    """The module's Redis namespace: its worker, API and wake-ups share it."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def worker(
    server_env: dict[str, str], namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """One worker with its metrics on a free port, its sweep every second."""
    env = {
        **server_env,
        **TEST_ENV,
        "INVENTORY_REDIS_NAMESPACE": namespace,
        "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
    }
    folder = tmp_path_factory.mktemp("worker_metrics")
    running = Worker(env, folder / "worker.log", free_port())
    try:
        wait_until(running.serving, timeout=60)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def api(
    server_env: dict[str, str], namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """One API process on the worker's namespace."""
    folder = tmp_path_factory.mktemp("worker_metrics_api")
    with api_servers(server_env, folder, count=1, INVENTORY_REDIS_NAMESPACE=namespace) as apis:
        yield apis[0]


async def test_a_fresh_store_is_counted_projected_and_caught_up(
    worker: Worker, settings: Settings, namespace: str, store_id: str
) -> None:
    before = samples(worker.scrape())
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            positions = await append_counted(conn, new_stream(store_id), store_id, count=7)
    wait_replicated(settings.replica_url, positions)
    send_wake_up(settings, namespace, store_id)

    def caught_up() -> bool:
        page = samples(worker.scrape())
        lag = where(page, "inventory_worker_projection_lag_events", store=store_id)
        return bool(lag) and not any(lag.values())

    wait_until(caught_up, timeout=60)
    wait_until(
        lambda: bool(
            where(
                samples(worker.scrape()),
                "inventory_worker_messages_total",
                actor="wake_projectors",
                outcome="done",
            )
        ),
        timeout=30,
    )
    page = samples(worker.scrape())
    projected = sum(where(page, "inventory_worker_events_projected_total").values())
    was = sum(where(before, "inventory_worker_events_projected_total").values())
    assert projected - was >= 7
    seconds = where(page, "inventory_worker_projection_lag_seconds", store=store_id)
    assert seconds
    assert set(seconds.values()) == {0.0}
    for queue in ("projections", "reports"):
        for state in ("ready", "delayed", "dead"):
            assert where(page, "inventory_worker_queue_messages", queue=queue, state=state)
    assert where(page, "inventory_worker_scrape_read_ok", source="replica") == {
        (("source", "replica"),): 1.0
    }
    assert where(page, "inventory_worker_scrape_read_ok", source="redis") == {
        (("source", "redis"),): 1.0
    }
    assert not where(page, "inventory_worker_projection_stalled", store=store_id)
    assert page[("inventory_worker_stores_backed_off", ())] == 0


def test_a_second_worker_on_a_taken_port_says_so_and_runs(
    worker: Worker, server_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    env = {**server_env, **TEST_ENV, "INVENTORY_REDIS_NAMESPACE": namespace}
    second = Worker(env, tmp_path / "second.log", worker.port)
    try:
        wait_until(lambda: b"worker metrics not served" in second.log.read_bytes(), timeout=60)
        assert second.process.poll() is None
    finally:
        second.stop()
    assert worker.serving()


def test_every_metric_the_rules_and_dashboard_read_is_exported(
    worker: Worker, api: ApiServer
) -> None:
    assert httpx.get(f"{api.base_url}/v1/stores/x/stock", timeout=10).status_code == 401
    response = httpx.get(f"{api.base_url}/metrics", timeout=10)
    assert response.status_code == 200
    exported = families(response.text) | families(worker.scrape())
    assert "inventory_replication_slot_lag_bytes" in exported
    assert "inventory_feed_connections" in exported
    shipped = {family(name) for name in shipped_names() - PROMETHEUS_OWN}
    missing = sorted(shipped - exported)
    assert not missing, f"alerts or panels read metrics nobody exports: {missing}"


async def test_the_api_counts_its_feed_connections(api: ApiServer, settings: Settings) -> None:
    key = api_key(settings, Role.ADMIN, ["*"], "metrics feed")

    def api_page() -> Samples:
        return samples(httpx.get(f"{api.base_url}/metrics", timeout=10).text)

    wait_until(lambda: api_page()[("inventory_feed_subscribed", ())] == 1)
    async with websockets.connect(f"ws://127.0.0.1:{api.port}/v1/feed?token={key}"):
        wait_until(lambda: api_page()[("inventory_feed_connections", ())] == 1)
    wait_until(lambda: api_page()[("inventory_feed_connections", ())] == 0)
    page = api_page()
    assert page[("inventory_replication_slot_present", ())] == 1
    assert page[("inventory_replication_slot_active", ())] == 1
    assert page[("inventory_replication_slot_lag_bytes", ())] >= 0
