"""`/health/ready` names the dependency that is down, and recovers when it is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.projectors.engine import project
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from tests.conftest import fresh_topology
from tests.projection_helpers import append_counted, new_stream, wait_replicated

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_topology() -> Iterator[EmbeddedTopology]:
    with fresh_topology() as servers:
        yield servers


def wait_for_status(url: str, status: int, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=10)
            if response.status_code == status:
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never answered {status}")
        time.sleep(0.2)


def test_ready_turns_503_naming_the_replica_while_it_is_down(
    own_topology: EmbeddedTopology,
) -> None:
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "inventory", "serve", "--port", str(port)],
        env={**os.environ, **own_topology.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/health/ready"
    try:
        wait_for_status(url, 200)
        assert own_topology.replica is not None
        own_topology.replica.stop()

        down = wait_for_status(url, 503).json()
        assert "replica" in down["failing"]
        assert down["checks"]["replica"]["ok"] is False
        assert down["checks"]["primary"]["ok"] is True

        own_topology.replica.start()
        own_topology.replica.wait_ready(own_topology.secrets["postgres"])
        back = wait_for_status(url, 200).json()
        assert back["failing"] == []
    finally:
        api.terminate()
        api.wait(30)


async def test_ready_turns_503_naming_projections_while_a_projector_lags(
    own_topology: EmbeddedTopology,
) -> None:
    env = own_topology.environment()
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "inventory", "serve", "--port", str(port)],
        env={
            **os.environ,
            **env,
            "INVENTORY_MAX_PROJECTION_LAG_EVENTS": "5",
            "INVENTORY_MAX_PROJECTION_LAG_SECONDS": "2",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/health/ready"
    store_id = "s-lagging"
    try:
        with ConnectionPool(env["INVENTORY_REPLICA_URL"], min_size=1, max_size=1) as pool:
            assert wait_for_status(url, 200).json()["checks"]["projections"]["ok"] is True

            # More events than allowed, none projected (this topology runs no worker).
            async with await psycopg.AsyncConnection.connect(env["INVENTORY_PRIMARY_URL"]) as conn:
                positions = await append_counted(conn, new_stream(store_id), store_id, count=6)
            wait_replicated(env["INVENTORY_REPLICA_URL"], positions)
            too_many = wait_for_status(url, 503).json()
            assert too_many["failing"] == ["projections"]
            assert "/s-lagging: 6 events" in too_many["checks"]["projections"]["error"]

            for projector in PROJECTORS:  # every read model, or ready stays 503
                project(pool, projector, store_id)
            assert wait_for_status(url, 200).json()["failing"] == []

            # One event, but older than allowed.
            async with await psycopg.AsyncConnection.connect(env["INVENTORY_PRIMARY_URL"]) as conn:
                await append_counted(conn, new_stream(store_id), store_id)
            too_old = wait_for_status(url, 503).json()
            assert too_old["failing"] == ["projections"]
            assert "/s-lagging: oldest " in too_old["checks"]["projections"]["error"]

            for projector in PROJECTORS:  # every read model, or ready stays 503
                project(pool, projector, store_id)
            caught_up = wait_for_status(url, 200).json()
            assert caught_up["checks"]["projections"]["ok"] is True
    finally:
        api.terminate()
        api.wait(30)
