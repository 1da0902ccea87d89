"""Primary loss without Patroni: the primary is killed (kill -9) while tills sell through
a real API and worker; the operator runs `inventory failover` against its standby."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inventory.runtime.embedded import DATABASE, EmbeddedTopology
from inventory.runtime.migrations import SUBSCRIPTION
from inventory.runtime.postgres import SUPERUSER
from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.conftest import fresh_topology
from tests.e2e.api_servers import api_key
from tests.e2e.processes import inventory
from tests.e2e.window_setup import api_with_worker
from tests.failover.patroni_cluster import plain_standby, query, slot_ready, wait
from tests.failover.primary_traffic import (
    BUDGETS,
    Tills,
    assert_nothing_lost,
    feed_events,
    prepare_store,
    wait_read,
)

pytestmark = pytest.mark.failover
OLD_STYLE = [
    f"ALTER SUBSCRIPTION {SUBSCRIPTION} DISABLE",
    f"ALTER SUBSCRIPTION {SUBSCRIPTION} SET (failover = false)",
    f"ALTER SUBSCRIPTION {SUBSCRIPTION} ENABLE",
]


@pytest.fixture(scope="module")
def topology() -> Iterator[EmbeddedTopology]:
    """Primary, replica and Valkey of their own (durable: commits wait for the standby)."""
    with fresh_topology(durable=True) as servers:
        yield servers


def _urls(topology: EmbeddedTopology, port: int) -> dict[str, str]:
    """The primary's URLs listing the primary and its standby, read-write first."""
    env = topology.environment()
    assert topology.primary is not None
    for name in ("INVENTORY_PRIMARY_URL", "INVENTORY_PRIMARY_ADMIN_URL"):
        both = f"127.0.0.1:{topology.primary.port},127.0.0.1:{port}"
        env[name] = env[name].replace(f"127.0.0.1:{topology.primary.port}", both)
        env[name] += "?target_session_attrs=read-write&connect_timeout=3"
    return env


def test_inventory_failover_promotes_the_standby_and_repoints_the_replica(
    topology: EmbeddedTopology, tmp_path: Path
) -> None:
    assert topology.primary is not None
    password = topology.secrets["postgres"]
    primary_admin = topology.environment()["INVENTORY_PRIMARY_ADMIN_URL"]
    replica_admin = topology.environment()["INVENTORY_REPLICA_ADMIN_URL"]
    # A subscription from before failover slots: `inventory migrate` converts it.
    for statement in OLD_STYLE:
        query(replica_admin, statement)
    migrated = inventory("migrate", env=topology.environment())
    assert migrated.returncode == 0, migrated.stderr
    assert query(replica_admin, "SELECT subfailover FROM pg_subscription") == [(True,)]

    standby = plain_standby(topology.primary, password, tmp_path / "servers")
    try:
        # RPO 0: commits wait for the standby; the replica gets nothing it lacks.
        for setting in (
            "synchronized_standby_slots = 'standby_slot'",
            "synchronous_standby_names = 'standby'",
        ):
            query(primary_admin, f"ALTER SYSTEM SET {setting}")
        query(primary_admin, "SELECT pg_reload_conf()")
        standby_admin = standby.url(SUPERUSER, password, DATABASE)
        wait(
            lambda: slot_ready(standby_admin, primary_admin), "the slot synced on the standby", 120
        )
        env = _urls(topology, standby.port)
        _sell_through_a_manual_failover(env, standby_admin, tmp_path, topology.primary.process.kill)
    finally:
        standby.stop()


def _sell_through_a_manual_failover(
    env: dict[str, str], standby_admin: str, folder: Path, kill: Callable[[], None]
) -> None:
    settings = Settings.from_env({**os.environ, **env})
    key = api_key(settings, Role.ADMIN, ["*"], "manual failover admin")
    store = f"m{uuid.uuid4().hex[:10]}"
    with api_with_worker(env, folder, **BUDGETS) as api:
        prepare_store(api.base_url, key, store)
        tills = Tills(api.base_url, key, store)
        tills.start()
        wait(lambda: tills.count() >= 150, "sales before the kill")
        before = feed_events(api.base_url, key, store, count=50)
        refused = inventory("failover", "--standby", standby_admin, "--check", env=env)
        assert refused.returncode == 2, refused.stdout
        assert "a primary still accepts writes" in refused.stderr

        # Runbook "Primary loss (manual)" 1: the primary dies (kill -9 of its postmaster).
        tills.killed_at = killed = time.monotonic()
        kill()
        # 2. The operator promotes its standby and repoints the replica.
        done = inventory("failover", "--standby", standby_admin, env=env)
        print(done.stdout, done.stderr)  # noqa: T201 - what an operator reads
        assert done.returncode == 0, done.stderr
        assert "promoted:" in done.stdout and "repointed:" in done.stdout
        wait(lambda: tills.first_write_after is not None, "a write on the new primary", 120)
        read_again = wait_read(
            api.base_url, key, store, tills.first_result["position"], since=killed
        )
        time.sleep(1)
        tills.stop()
        again = inventory("failover", "--standby", standby_admin, env=env)
        assert again.returncode == 2 and "is not a standby" in again.stderr

        assert_nothing_lost(
            tills, settings, env=env, api=(api.base_url, key), store=store, before=before
        )
    print(  # noqa: T201 - the figures the runbook quotes
        f"\nManual failover: {len(tills.acknowledged)} sales acknowledged, 0 lost, 0 doubled"
        f" ({tills.replayed} answered by replay); writes again after"
        f" {tills.first_write_after:.2f} s, reads reflect them after {read_again:.2f} s;"
        f" answers {dict(tills.statuses)} codes {dict(tills.codes)}"
    )
