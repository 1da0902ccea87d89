"""The test session's servers: the embedded topology `inventory dev` runs, started once."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from inventory.wiring import open_resources


@contextmanager
def new_home() -> Iterator[Path]:
    """A fresh folder for an INVENTORY_HOME that the embedded servers' system user can
    reach, removed with everything in it (two clusters' data, ~110 MB) when done."""
    home = Path(tempfile.mkdtemp(prefix="inventory-test-"))
    try:
        home.chmod(0o755)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def fresh_topology(*, durable: bool = False) -> Iterator[EmbeddedTopology]:
    """Primary, replica and Redis of their own in a new home; stopped and removed after."""
    with new_home() as home:
        servers = EmbeddedTopology(home / "home", durable=durable)
        servers.start()
        try:
            yield servers
        finally:
            servers.stop()


@pytest.fixture(scope="session")
def topology() -> Iterator[EmbeddedTopology]:
    """Primary, replica and Redis for the whole session (fast, non-durable settings)."""
    with fresh_topology() as servers:
        yield servers


@pytest.fixture(scope="session")
def server_env(topology: EmbeddedTopology) -> dict[str, str]:
    """The `INVENTORY_*` variables naming the session's servers."""
    return topology.environment()


@pytest.fixture(scope="session")
def settings(server_env: dict[str, str]) -> Settings:
    """Settings pointing at the session's servers."""
    return Settings.from_env({**os.environ, **server_env})


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """The pools and Redis client the API and worker use, on the session's servers."""
    async with open_resources(settings) as opened:
        await opened.primary.wait()
        await opened.replica.wait()
        yield opened


@pytest.fixture
def store_id() -> str:
    """A store id no other test uses, so tests never see each other's data."""
    return f"s{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scratch_database(settings: Settings) -> Iterator[str]:
    """A new empty database on the primary, as its superuser; dropped afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield settings.primary_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
