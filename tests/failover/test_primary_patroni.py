"""Primary loss decided by Patroni: the primary's node dies (kill -9 of Patroni and its
postmaster) while tills sell through a real API and worker; Patroni promotes the standby."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import api_key
from tests.e2e.window_setup import api_with_worker
from tests.failover.patroni_cluster import patroni_cluster, slot_ready, wait
from tests.failover.primary_traffic import (
    BUDGETS,
    Tills,
    assert_nothing_lost,
    feed_events,
    prepare_store,
    wait_read,
)

pytestmark = pytest.mark.failover


def test_patroni_promotes_the_standby_and_nothing_acknowledged_is_lost(tmp_path: Path) -> None:
    with patroni_cluster() as cluster:
        env = cluster.environment()
        settings = Settings.from_env({**os.environ, **env})
        key = api_key(settings, Role.ADMIN, ["*"], "failover admin")
        store = f"f{uuid.uuid4().hex[:10]}"
        with api_with_worker(env, tmp_path, **BUDGETS) as api:
            prepare_store(api.base_url, key, store)
            tills = Tills(api.base_url, key, store)
            tills.start()
            wait(lambda: tills.count() >= 150, "sales before the kill")
            before = feed_events(api.base_url, key, store, count=50)

            # Runbook "Primary loss (Patroni)" 1: the primary's node dies.
            old = cluster.leader()
            assert old is not None
            new = cluster.members["pg2" if old.name == "pg1" else "pg1"]
            tills.killed_at = killed = time.monotonic()
            old.kill()
            wait(lambda: tills.first_write_after is not None, "a write on the new primary", 120)
            assert cluster.leader() is new
            listed = new.patronictl("list")
            assert any(new.name in line and "Leader" in line for line in listed.splitlines())
            # 2. The dead member stays away: the new primary stops holding the read
            # replica back for its slot (its config, then `patronictl reload`).
            cluster.set_standby_slots(new, None)
            read_again = wait_read(
                api.base_url, key, store, tills.first_result["position"], since=killed
            )
            # 3. The member comes back: Patroni rewinds it into a synchronous standby;
            # once it holds the synced slot, the new primary waits for it again.
            old.start()
            wait(lambda: cluster.sync_state(new, old) == "sync", "the old member rejoins", 120)
            wait(lambda: slot_ready(old.admin_url, new.admin_url), "the slot synced on it", 120)
            cluster.set_standby_slots(new, old.name)
            time.sleep(1)
            tills.stop()

            assert_nothing_lost(
                tills, settings, env=env, api=(api.base_url, key), store=store, before=before
            )
        print(  # noqa: T201 - the figures the runbook quotes
            f"\nPatroni node loss: {len(tills.acknowledged)} sales acknowledged, 0 lost,"
            f" 0 doubled ({tills.replayed} answered by replay);"
            f" writes again after {tills.first_write_after:.2f} s,"
            f" reads reflect them after {read_again:.2f} s;"
            f" answers {dict(tills.statuses)} codes {dict(tills.codes)}"
        )
