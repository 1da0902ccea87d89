"""Two API processes through Debian's PgBouncer in transaction mode (INVENTORY_PGBOUNCER=1)
under concurrent sales: no 5xx, every sale stored exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import api_key, api_servers
from tests.failover.scale_sales import Sale, sales_stored, sell, stocked_store
from tests.failover.scale_servers import pgbouncer

pytestmark = [pytest.mark.failover, pytest.mark.e2e]

SALES = 400
TILLS = 8  # per API process
KEYS = "/v1/api-keys?limit=5"


def test_pgbouncer_in_transaction_mode_carries_concurrent_sales_once_each(
    server_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    store = f"pb{uuid.uuid4().hex[:8]}"
    skus = [f"PB{number}" for number in range(10)]
    stocked_store(settings, store, skus, SALES)
    key = api_key(settings, Role.ADMIN, ["*"], "pgbouncer test")
    # Four server connections for sixteen tills and two pools of 20: PgBouncer hands each
    # transaction whichever backend is free, so every statement meets a stranger's session.
    with pgbouncer(settings.primary_url, pool_size=4) as bounced:
        env = {
            "INVENTORY_PRIMARY_URL": bounced,
            "INVENTORY_PRIMARY_DIRECT_URL": settings.primary_url,
            "INVENTORY_PGBOUNCER": "1",
            "INVENTORY_RATE_LIMIT_ADMIN": "100000/60",
        }
        with api_servers(server_env, tmp_path, count=2, **env) as apis:
            sales = [Sale(f"p{number}", skus[number % len(skus)]) for number in range(SALES)]
            halves = sales[::2], sales[1::2]
            started = time.monotonic()

            async def both() -> list[list[int]]:
                # Each sale is followed by a read of the primary (the API keys list) in
                # the extended protocol: psycopg would prepare it on its 6th run.
                return await asyncio.gather(
                    *(
                        sell(api.base_url, key, store, half, tills=TILLS, retry=False, also=KEYS)
                        for api, half in zip(apis, halves, strict=True)
                    )
                )

            listed = Counter(status for each in asyncio.run(both()) for status in each)
            took = time.monotonic() - started
        with psycopg.connect(bounced, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")  # PgBouncer still serves after the load

    statuses = Counter(status for sale in sales for status in sale.statuses)
    print(  # noqa: T201 - the figure docs/scaling.md quotes
        f"\npgbouncer: {SALES} sales by {2 * TILLS} tills on 2 API processes through 4 "
        f"server connections in {took:.2f} s ({SALES / took:.0f} sales/s, each with a read of "
        f"the primary); sales answered {dict(statuses)}, reads {dict(listed)}"
    )
    assert statuses == Counter({201: SALES})
    assert listed == Counter({200: SALES})
    stored = sales_stored(settings.primary_url, store)
    assert sorted(stored) == sorted(sale.sale_id for sale in sales)
    assert set(stored.values()) == {1}, "a sale stored twice"
