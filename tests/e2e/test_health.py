"""`/health/ready` names the dependency that is down, and recovers when it is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from tests.conftest import new_home

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_topology() -> Iterator[EmbeddedTopology]:
    servers = EmbeddedTopology(new_home() / "home", durable=False)
    servers.start()
    yield servers
    servers.stop()


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
