"""SIGTERM stops a worker within a bounded time even while its Redis is gone: the worker
must not wait forever to acknowledge a message into a server that is not there."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from inventory.imports.wakeups import ACTOR, QUEUE
from inventory.runtime import redis_clients
from inventory.runtime.processes import free_port
from inventory.runtime.valkey_server import EmbeddedValkey
from tests.e2e.api_servers import TEST_ENV
from tests.e2e.reading import wait_until

pytestmark = pytest.mark.e2e

STOP_BOUND = 30  # seconds the test waits for the exit before it fails
BURST = 400  # import wake-ups for unknown jobs: each a short round trip to the primary


def send_burst(url: str, namespace: str) -> None:
    """Queue BURST messages, so that the worker holds some in memory when Redis goes."""
    client = redis_clients.sync_client(url, socket_connect_timeout=2, socket_timeout=5)
    broker = RedisBroker(client=client, namespace=f"{namespace}-dramatiq")  # type: ignore[no-untyped-call]
    broker.declare_queue(QUEUE)
    for _ in range(BURST):
        job = str(uuid.uuid4())
        broker.enqueue(dramatiq.Message(QUEUE, ACTOR, (job,), {}, {}))
    broker.close()


def test_sigterm_stops_a_worker_whose_redis_has_gone(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    valkey = EmbeddedValkey(tmp_path / "valkey", free_port(), secrets.token_hex(8), durable=False)
    valkey.start()
    valkey.wait_ready()
    log = tmp_path / "worker.log"
    namespace = f"gone-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        **server_env,
        **TEST_ENV,
        "INVENTORY_REDIS_URL": valkey.url,
        "INVENTORY_REDIS_NAMESPACE": namespace,
        "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
        "INVENTORY_WORKER_METRICS_PORT": "0",
    }
    with log.open("ab") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "inventory", "worker", "--threads", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "worker started" in log.read_text(), 60)
        send_burst(valkey.url, namespace)
        time.sleep(0.5)  # the worker is busy with the burst: some prefetched, some in hand
        assert valkey.process is not None
        valkey.process.kill()  # gone at once, as a crashed server or host is
        time.sleep(3)  # acknowledgements, consumers and sweeps now fail
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"the worker ignored SIGTERM for {STOP_BOUND} s:\n{log.read_text()[-3000:]}"
            )
        took = time.monotonic() - started
        print(f"\nworker without Redis: exited {code} {took:.1f} s after SIGTERM")  # noqa: T201
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        valkey.stop()
    assert code == 0, log.read_text()[-3000:]
