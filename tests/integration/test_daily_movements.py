"""The daily movement totals equal a plain Python fold of the same events, however batched,
by the store's local day."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.cli import projections as admin
from inventory.domain.authority import SYSTEM
from inventory.domain.commands import (
    AdjustmentLine,
    AdjustStock,
    Command,
    CountLine,
    CountStock,
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RecordSale,
    RegisterProduct,
    SetReorderPoint,
)
from inventory.domain.events import Line
from inventory.projectors.engine import project
from inventory.readmodels.daily_movements import DailyMovements
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import run_commands
from tests.e2e.reading import primary_positions, replicated, wait_until

movements = DailyMovements()


@pytest.fixture(scope="module")
def replica_pool(settings: Settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as pool:
        yield pool


def history(
    store: str, skus: list[str], seed: int, count: int, timezone: str = "UTC"
) -> list[Command]:
    """`count` random receipts, sales, adjustments, counts and reorder points over a week,
    at any minute, in a store that allows negative stock (so every command is accepted)."""
    rng, now = random.Random(seed), datetime.now(UTC)
    commands: list[Command] = [
        OpenStore(store_id=store, name=store, timezone=timezone, negative_stock="allow", now=now),
        *(RegisterProduct(sku=sku, name=sku, decimals=2, now=now) for sku in skus),
    ]
    for number in range(count):
        sku, at = rng.choice(skus), now - timedelta(minutes=rng.randrange(7 * 24 * 60))
        quantity = Decimal(rng.randrange(1, 500)) / 100
        kind = rng.randrange(5)
        if kind == 0:
            line = ReceiptLine(sku=sku, quantity=quantity)
            commands.append(ReceiveStock(store_id=store, lines=(line,), occurred_at=at, now=now))
        elif kind == 1:
            sale = (Line(sku, quantity),)
            commands.append(
                RecordSale(
                    store_id=store, sale_id=f"s{number}", lines=sale, occurred_at=at, now=now
                )
            )
        elif kind == 2:
            adjust = AdjustmentLine(sku=sku, delta=-quantity, reason="damaged")
            commands.append(AdjustStock(store_id=store, lines=(adjust,), occurred_at=at, now=now))
        elif kind == 3:
            counted = (CountLine(sku=sku, counted=quantity),)
            commands.append(CountStock(store_id=store, lines=counted, occurred_at=at, now=now))
        else:
            commands.append(
                SetReorderPoint(store_id=store, sku=sku, minimum=quantity, occurred_at=at, now=now)
            )
    return commands


def oracle(replica_url: str, store: str) -> dict[tuple[date, str, str], tuple[int, Decimal]]:
    """The totals, folded in Python from the events copy's JSON, by days in the zone the
    store opened with."""
    folded: dict[tuple[date, str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    with psycopg.connect(replica_url) as conn:
        opened = conn.execute(
            "SELECT data->>'timezone' FROM events WHERE stream = %s AND version = 1",
            (f"store-{store}",),
        ).fetchone()
        assert opened is not None
        zone = ZoneInfo(opened[0])
        rows = conn.execute(
            "SELECT type, sku, occurred_at, data FROM events WHERE store = %s AND type LIKE"
            " 'stock.%%' AND type <> 'stock.reorder_point_set'",
            (store,),
        ).fetchall()
    for event_type, sku, occurred_at, data in rows:
        raw = data.get("quantity", data.get("delta", data.get("counted")))
        key = (occurred_at.astimezone(zone).date(), sku, event_type)
        folded[key][0] += 1
        folded[key][1] += Decimal(str(raw))
    return {key: (count, total) for key, (count, total) in folded.items()}


def table(replica_url: str, store: str) -> dict[tuple[date, str, str], tuple[int, Decimal]]:
    with psycopg.connect(replica_url) as conn:
        rows = conn.execute(
            "SELECT day, sku, type, count, quantity FROM daily_movements WHERE store = %s",
            (store,),
        ).fetchall()
    return {(day, sku, kind): (count, quantity) for day, sku, kind, count, quantity in rows}


# St John's is 3 h 30 behind UTC (2 h 30 in summer): its days cut UTC hours in half.
@pytest.mark.parametrize("timezone", ["UTC", "America/St_Johns", "Pacific/Kiritimati"])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_daily_totals_equal_a_python_fold_of_the_events_whatever_the_batch(
    settings: Settings, store_id: str, replica_pool: ConnectionPool, batch_size: int, timezone: str
) -> None:
    skus = [f"{name}.{store_id}" for name in ("A", "B", "C")]
    commands = history(store_id, skus, seed=batch_size, count=120, timezone=timezone)
    run_commands(settings, *commands)
    positions = primary_positions(settings.primary_url, [store_id])
    wait_until(lambda: replicated(settings.replica_url, positions))

    project(replica_pool, movements, store_id, batch_size=batch_size)

    expected = oracle(settings.replica_url, store_id)
    assert table(settings.replica_url, store_id) == expected
    assert sum(count for count, _ in expected.values()) > 80
    assert project(replica_pool, movements, store_id) == 0  # nothing twice
    assert table(settings.replica_url, store_id) == expected


def test_a_rebuild_gives_the_same_rows(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    skus = [f"{name}.{store_id}" for name in ("A", "B")]
    run_commands(settings, *history(store_id, skus, seed=42, count=40, timezone="Asia/Kolkata"))
    positions = primary_positions(settings.primary_url, [store_id])
    wait_until(lambda: replicated(settings.replica_url, positions))
    for partition in everything_partitions(settings.replica_url):
        project(replica_pool, movements, partition)
    before = every_row(settings.replica_url)

    assert admin.rebuild(settings.replica_url, "daily_movements", out=io.StringIO()) == 0

    assert every_row(settings.replica_url) == before
    assert table(settings.replica_url, store_id) == oracle(settings.replica_url, store_id)


def everything_partitions(replica_url: str) -> list[str]:
    with psycopg.connect(replica_url) as conn:
        return [row[0] for row in conn.execute("SELECT DISTINCT partition FROM events")]


def every_row(replica_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(replica_url) as conn:
        return conn.execute(
            "SELECT store, day, sku, type, count, quantity FROM daily_movements ORDER BY 1, 2, 3, 4"
        ).fetchall()


def test_a_movement_counts_on_the_store_s_local_day(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    """23:30 on 3 March in Los Angeles is 07:30 on 4 March in UTC: the store's day is the
    3rd; a store in Tokyo has the same instant on its 4th, at 16:30."""
    now = datetime.now(UTC)
    at = datetime(2026, 3, 3, 23, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
    tokyo, sku = f"{store_id}t", f"A.{store_id}"
    receipt = (ReceiptLine(sku=sku, quantity=Decimal(2)),)
    run_commands(
        settings,
        OpenStore(store_id=store_id, name="LA", timezone="America/Los_Angeles", now=now),
        OpenStore(store_id=tokyo, name="Tokyo", timezone="Asia/Tokyo", now=now),
        RegisterProduct(sku=sku, name=sku, now=now),
        # Months back: beyond a clerk's 30 days, so sent with the service's own authority.
        ReceiveStock(store_id=store_id, lines=receipt, occurred_at=at, authority=SYSTEM, now=now),
        ReceiveStock(store_id=tokyo, lines=receipt, occurred_at=at, authority=SYSTEM, now=now),
    )
    positions = primary_positions(settings.primary_url, [store_id, tokyo])
    wait_until(lambda: replicated(settings.replica_url, positions))
    for store in (store_id, tokyo):
        project(replica_pool, movements, store)

    received = (1, Decimal(2))
    assert table(settings.replica_url, store_id) == {
        (date(2026, 3, 3), sku, "stock.received"): received
    }
    assert table(settings.replica_url, tokyo) == {
        (date(2026, 3, 4), sku, "stock.received"): received
    }
