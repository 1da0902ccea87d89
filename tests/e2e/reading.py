"""Helpers of the end-to-end tests: HTTP clients, a worker, waiting, counting events."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from inventory.runtime.settings import Settings
from tests.e2e.api_servers import TEST_ENV, ApiServer, bearer


class Client:
    """An HTTP client for one API process with one credential."""

    def __init__(self, api: ApiServer, key: str) -> None:
        self.base_url = api.base_url
        self.headers = bearer(key)

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET `path` with query parameters (None values left out)."""
        query = {name: value for name, value in params.items() if value is not None}
        return httpx.get(f"{self.base_url}{path}", params=query, headers=self.headers, timeout=30)

    def post(
        self, path: str, body: Any, *, idempotent: bool = True, method: str = "POST"
    ) -> httpx.Response:
        """POST (or `method`) a JSON body, with a fresh Idempotency-Key unless told otherwise."""
        headers = dict(self.headers)
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        url = f"{self.base_url}{path}"
        return httpx.request(method, url, json=body, headers=headers, timeout=30)

    def command(self, path: str, body: Any) -> int:
        """Run a command that must succeed; its result's position."""
        response = self.post(path, body)
        assert response.status_code == 201, response.text
        position: int = response.json()["position"]
        return position


class Pos:
    """An HTTP client for one API process, sending commands as a till does."""

    def __init__(self, api: ApiServer, key: str) -> None:
        self.base_url = api.base_url
        self.headers = bearer(key)

    def post(self, path: str, body: Any, key: str | None = "auto") -> httpx.Response:
        """POST a JSON body with the Idempotency-Key `key` (a fresh one for "auto", none
        for None)."""
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
        return httpx.post(f"{self.base_url}{path}", json=body, headers=headers, timeout=30)

    def raw(self, path: str, content: bytes) -> httpx.Response:
        """POST `content` as it is, declared JSON, with a fresh Idempotency-Key."""
        headers = {**self.headers, "Content-Type": "application/json"}
        headers["Idempotency-Key"] = uuid.uuid4().hex
        return httpx.post(f"{self.base_url}{path}", content=content, headers=headers, timeout=30)


def start_worker(server_env: dict[str, str], namespace: str, log: Path) -> subprocess.Popen[bytes]:
    """A real `inventory worker` on the API's Redis namespace."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "inventory", "worker"],
            env={
                **os.environ,
                **server_env,
                **TEST_ENV,
                "INVENTORY_REDIS_NAMESPACE": namespace,
                "INVENTORY_SWEEP_INTERVAL_SECONDS": "1",
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until(condition: Callable[[], bool], timeout: float = 30) -> None:
    """Poll `condition` until it holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def primary_positions(primary_url: str, stores: list[str]) -> list[int]:
    """Every event position of `stores` on the primary."""
    with psycopg.connect(primary_url) as conn:
        rows = conn.execute(
            "SELECT position FROM events WHERE store = ANY(%s) ORDER BY position", (stores,)
        ).fetchall()
    return [row[0] for row in rows]


def replicated(replica_url: str, positions: list[int]) -> bool:
    """True when every position is in the replica's events copy."""
    with psycopg.connect(replica_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM events WHERE position = ANY(%s)", (positions,)
        ).fetchone()
    return row is not None and row[0] == len(positions)


def events_count(settings: Settings) -> int:
    """How many events the primary holds, of every store."""
    with psycopg.connect(settings.primary_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])
