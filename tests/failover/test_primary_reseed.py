"""Slot bloat and re-seeding the read replica: the replica stays away until the primary
invalidates its slot (max_slot_wal_keep_size), then the runbook builds it anew."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from inventory.runtime.embedded import DATABASE, EmbeddedTopology
from inventory.runtime.postgres import SUPERUSER
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.conftest import fresh_topology
from tests.e2e.api_servers import api_key, bearer
from tests.e2e.processes import inventory
from tests.e2e.test_containment import READ_MODELS
from tests.e2e.window_setup import api_with_worker
from tests.failover.patroni_cluster import query, wait
from tests.failover.primary_traffic import (
    SKU,
    STOCK,
    prepare_store,
    wait_projected,
    wait_replicated,
)

pytestmark = pytest.mark.failover
# Runbook 6.4 step 1, as the docs print it.
WATCH = """
SELECT slot_name, active, wal_status, invalidation_reason,
       pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS retained,
       pg_size_pretty(safe_wal_size) AS left_before_invalidation
FROM pg_replication_slots
"""
RESEED_REPLICA = [
    "ALTER SUBSCRIPTION inventory_events DISABLE",
    "ALTER SUBSCRIPTION inventory_events SET (slot_name = NONE)",
    "DROP SUBSCRIPTION inventory_events",
]


def _sell(base_url: str, key: str, store: str, count: int) -> None:
    for _ in range(count):
        response = httpx.post(
            f"{base_url}/v1/stores/{store}/sales",
            json={"sale_id": uuid.uuid4().hex, "lines": [{"sku": SKU, "quantity": 1}]},
            headers={**bearer(key), "Idempotency-Key": uuid.uuid4().hex},
            timeout=30,
        )
        assert response.status_code == 201, response.text


def _read_models(settings: Settings, store: str) -> dict[str, list[Any]]:
    with psycopg.connect(settings.replica_url) as conn:
        return {
            name: conn.execute(sql.encode(), ([store],)).fetchall()
            for name, sql in READ_MODELS.items()
        }


def _slot(primary_admin: str) -> dict[str, Any]:
    rows = query(primary_admin, WATCH)
    print(*rows, sep="\n")  # noqa: T201 - what the operator sees
    return {row[0]: row for row in rows}["inventory_events"]


def test_an_invalidated_slot_is_watched_and_the_replica_reseeded(tmp_path: Path) -> None:
    with fresh_topology() as topology:
        for name in ("before", "after"):
            (tmp_path / name).mkdir()
        _lose_and_reseed(topology, topology.environment(), tmp_path)


def _lose_and_reseed(topology: EmbeddedTopology, env: dict[str, str], folder: Path) -> None:
    settings = Settings.from_env({**os.environ, **env})
    primary_admin, replica_admin = (
        env["INVENTORY_PRIMARY_ADMIN_URL"],
        env["INVENTORY_REPLICA_ADMIN_URL"],
    )
    assert topology.primary and topology.replica
    primary_server = topology.primary.url(SUPERUSER, topology.secrets["postgres"])
    replica_server = topology.replica.url(SUPERUSER, topology.secrets["postgres"])
    key = api_key(settings, Role.ADMIN, ["*"], "reseed admin")
    store = f"r{uuid.uuid4().hex[:10]}"
    with api_with_worker(env, folder / "before") as api:
        prepare_store(api.base_url, key, store)
        _sell(api.base_url, key, store, 20)
        wait_replicated(settings, env["INVENTORY_PRIMARY_URL"], store)
        wait_projected(settings, store)
        before = _read_models(settings, store)
    assert _slot(primary_admin)[2] == "reserved"

    # The replica stays away while the primary writes past max_slot_wal_keep_size.
    query(replica_admin, "ALTER SUBSCRIPTION inventory_events DISABLE")
    query(primary_server, "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    query(primary_server, "SELECT pg_reload_conf()")
    query(primary_server, "CREATE TABLE wal_filler (x bigint)")
    for _ in range(4):
        query(primary_server, "INSERT INTO wal_filler SELECT generate_series(1, 20000)")
        query(primary_server, "SELECT pg_switch_wal()")
    query(primary_server, "CHECKPOINT")
    wait(lambda: _slot(primary_admin)[2] == "lost", "the slot invalidated", 60)
    assert _slot(primary_admin)[3] == "wal_removed"

    # Runbook 6.5, workers stopped: 2. subscription and database, 3. the slot, 4. migrate.
    for statement in RESEED_REPLICA:
        query(replica_admin, statement)
    query(replica_server, f"DROP DATABASE {DATABASE} WITH (FORCE)")
    query(replica_server, f"CREATE DATABASE {DATABASE}")
    query(primary_admin, "SELECT pg_drop_replication_slot('inventory_events')")
    query(primary_server, "ALTER SYSTEM RESET max_slot_wal_keep_size")
    query(primary_server, "SELECT pg_reload_conf()")
    for command in (["migrate"], ["projections", "rebuild", "--all"], ["audit", "verify"]):
        done = inventory(*command, env=env, timeout=180)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert query(replica_admin, "SELECT subfailover FROM pg_subscription") == [(True,)]
    assert _read_models(settings, store) == before

    # 5. The workers start again; new commands reach the new copy and its read models.
    with api_with_worker(env, folder / "after") as api:
        _sell(api.base_url, key, store, 5)
        wait_replicated(settings, env["INVENTORY_PRIMARY_URL"], store)
        wait_projected(settings, store)
        levels = _read_models(settings, store)["stock_levels"]
    assert [level[2] for level in levels] == [STOCK - 25]
