"""Processes and senders for the business-time window's end-to-end tests: an API process
with a worker on its Redis namespace, a manager user (a person) and keys (devices)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_servers
from tests.e2e.reading import Client, start_worker

LEVEL_FIELDS = ("on_hand", "reserved", "available", "in_transit_in", "in_transit_out")


@contextmanager
def api_with_worker(server_env: dict[str, str], folder: Path, **extra: str) -> Iterator[ApiServer]:
    """One API process (with `extra` variables) and one worker sharing a fresh Redis namespace."""
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    running = start_worker(server_env, namespace, folder / "worker.log")
    try:
        with api_servers(
            server_env, folder, count=1, INVENTORY_REDIS_NAMESPACE=namespace, **extra
        ) as apis:
            yield apis[0]
    finally:
        running.terminate()
        running.wait(30)


def user_client(api: ApiServer, settings: Settings, role: Role) -> Client:
    """A client signed in as a new user (a person, not a key) with `role` over every store."""
    name, password = f"w{uuid.uuid4().hex[:10]}", "a long enough password"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            bootstrap.create_user, settings.primary_url, name, password, role, ["*"]
        ).result()
    response = httpx.post(
        f"{api.base_url}/v1/auth/token", json={"username": name, "password": password}, timeout=30
    )
    assert response.status_code == 200, response.text
    return Client(api, response.json()["access_token"])


def read(client: Client, path: str, timeout: float = 120, **params: Any) -> httpx.Response:
    """GET with `min_position`, retrying while the read side lags (503) up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path, **params)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response


def same_level(read_side: dict[str, Any], written: dict[str, Any]) -> bool:
    """Whether a read level shows the quantities and version a command result reported."""
    return read_side["version"] == written["version"] and all(
        Decimal(str(read_side[name])) == Decimal(str(written[name])) for name in LEVEL_FIELDS
    )


def events_of(settings: Settings, store: str) -> int:
    """How many events the primary holds for `store`."""
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE store = %s", (store,)).fetchone()
    assert row is not None
    return int(row[0])
