"""With the primary stopped, queries keep answering from the replica: stale, and saying
how stale in `X-Read-Position`. On its own servers: stopping the session's primary would
break every other test."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.conftest import fresh_topology
from tests.e2e.api_servers import api_key, api_servers, bearer
from tests.e2e.reading import start_worker

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_topology() -> Iterator[EmbeddedTopology]:
    with fresh_topology() as servers:
        yield servers


def test_queries_answer_stale_with_the_read_position_while_the_primary_is_down(
    own_topology: EmbeddedTopology, tmp_path: Path
) -> None:
    env = own_topology.environment()
    settings = Settings.from_env({**os.environ, **env})
    key = bearer(api_key(settings, Role.ADMIN, ["*"], "stale"))
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    running = start_worker(env, namespace, tmp_path / "worker.log")
    try:
        with api_servers(env, tmp_path, count=1, INVENTORY_REDIS_NAMESPACE=namespace) as apis:
            base = apis[0].base_url

            def call(method: str, path: str, **kwargs: object) -> httpx.Response:
                headers = {**key, "Idempotency-Key": uuid.uuid4().hex}
                return httpx.request(method, base + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

            assert call("POST", "/v1/stores", json={"id": "s1", "name": "One"}).status_code == 201
            assert (
                call("POST", "/v1/products", json={"sku": "A", "name": "Apple"}).status_code == 201
            )
            receipt = call(
                "POST", "/v1/stores/s1/receipts", json={"lines": [{"sku": "A", "quantity": 7}]}
            )
            position = receipt.json()["position"]
            fresh = call("GET", "/v1/stores/s1/stock", params={"min_position": position})
            assert fresh.status_code == 200
            # min_position covers the receipt's store; the product is projected in the
            # partition of events of no store, which may come a moment later.
            deadline = time.monotonic() + 30
            while call("GET", "/v1/stock/A").status_code != 200:
                assert time.monotonic() < deadline, "product A never reached the read side"
                time.sleep(0.05)
            assert own_topology.primary is not None
            own_topology.primary.stop()

            paths = [
                "/v1/stores/s1/stock",
                "/v1/stores/s1/stock/A",
                "/v1/stock/A",
                "/v1/search?q=apple",
                "/v1/stores/s1",
            ]
            answers = [call("GET", path) for path in paths]

            assert [a.status_code for a in answers] == [200] * len(paths)
            assert answers[0].json() == fresh.json()
            assert answers[1].json()["on_hand"] == 7
            assert {a.headers["X-Read-Position"] for a in answers[:3]} == {
                fresh.headers["X-Read-Position"]
            }
            refused = call(
                "POST", "/v1/stores/s1/receipts", json={"lines": [{"sku": "A", "quantity": 1}]}
            )
            assert refused.status_code == 503
    finally:
        running.terminate()
        running.wait(30)
