"""`inventory serve` processes for tests, and the principals and stores they need."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import Command, OpenStore
from inventory.domain.errors import CommandRejected, ProductExists, StoreExists
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role
from inventory.service import Actor, CommandService, Decision

# Tests call from one IP; they must not run into the anonymous budget by accident.
TEST_ENV = {"INVENTORY_RATE_LIMIT_ANONYMOUS": "100000/60", "INVENTORY_LOG_JSON": "1"}


class ApiServer:
    """One `inventory serve` on a free port, its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log = log
        self.base_url = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command(), env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
            )

    def command(self) -> list[str]:
        """The server's command line."""
        return [sys.executable, "-m", "inventory", "serve", "--port", str(self.port)]

    def wait_live(self, timeout: float = 30) -> None:
        """Poll /health/live until it answers."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"inventory serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base_url}/health/live", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"inventory serve not live:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.terminate()
        self.process.wait(30)


@contextmanager
def api_servers(
    server_env: dict[str, str], folder: Path, count: int = 2, **extra: str
) -> Iterator[list[ApiServer]]:
    """`count` API processes sharing the session's servers and a fresh Redis namespace."""
    env = {
        **server_env,
        **TEST_ENV,
        "INVENTORY_REDIS_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}",
        **extra,
    }
    servers = [ApiServer(env, folder / f"api-{index}.log") for index in range(count)]
    try:
        for server in servers:
            server.wait_live()
        yield servers
    finally:
        for server in servers:
            server.stop()


def api_key(settings: Settings, role: Role, stores: list[str], name: str = "test") -> str:
    """A new API key (created as the CLI does; on a thread, so async tests may call it)."""
    with ThreadPoolExecutor(1) as pool:
        created = pool.submit(bootstrap.create_key, settings.primary_url, name, role, stores)
        return created.result().key


class _Plain:
    """Accepts the service's outcome without rendering an HTTP response."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, b""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, b""


SETUP = Actor(id="test:setup", kind="system", name="test setup", role="admin")


def run_commands(settings: Settings, *commands: Command) -> None:
    """Run commands through the real command service (on a thread, so async tests may
    call it); a store or product that already exists is fine."""

    async def run() -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            settings.primary_url, min_size=1, max_size=2, open=False
        )
        async with pool:
            service = CommandService(pool)
            for command in commands:
                try:
                    await service.handle(command, SETUP, _Plain())
                except (StoreExists, ProductExists):
                    continue

    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, run()).result()


def open_store(settings: Settings, store_id: str) -> None:
    """Open the store `store_id` (a known store: its `store-{id}` stream exists)."""
    now = datetime.now(UTC)
    run_commands(settings, OpenStore(store_id=store_id, name=f"Store {store_id}", now=now))


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}
