"""The daily movement totals equal a plain Python fold of the same events, however batched."""

from __future__ import annotations

import io
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

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
from inventory.projectors import admin
from inventory.projectors.daily_movements import DailyMovements
from inventory.projectors.engine import project
from inventory.runtime.settings import Settings
from tests.e2e.api_servers import run_commands
from tests.e2e.reading import primary_positions, replicated, wait_until

movements = DailyMovements()


@pytest.fixture(scope="module")
def replica_pool(settings: Settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as pool:
        yield pool


def history(store: str, skus: list[str], seed: int, count: int) -> list[Command]:
    """`count` random receipts, sales, adjustments, counts and reorder points over a week,
    in a store that allows negative stock (so every command is accepted)."""
    rng, now = random.Random(seed), datetime.now(UTC)
    commands: list[Command] = [
        OpenStore(store_id=store, name=store, negative_stock="allow", now=now),
        *(RegisterProduct(sku=sku, name=sku, decimals=2, now=now) for sku in skus),
    ]
    for number in range(count):
        sku, at = rng.choice(skus), now - timedelta(hours=rng.randrange(7 * 24))
        quantity = Decimal(rng.randrange(1, 500)) / 100
        kind = rng.randrange(5)
        if kind == 0:
            line = ReceiptLine(sku=sku, quantity=quantity)
            commands.append(ReceiveStock(store_id=store, lines=(line,), occurred_at=at, now=now))
        elif kind == 1:
            sale = (Line(sku, quantity),)
            commands.append(RecordSale(store_id=store, sale_id=f"s{number}", lines=sale,
                                       occurred_at=at, now=now))  # fmt: skip
        elif kind == 2:
            adjust = AdjustmentLine(sku=sku, delta=-quantity, reason="damaged")
            commands.append(AdjustStock(store_id=store, lines=(adjust,), occurred_at=at, now=now))
        elif kind == 3:
            counted = (CountLine(sku=sku, counted=quantity),)
            commands.append(CountStock(store_id=store, lines=counted, occurred_at=at, now=now))
        else:
            commands.append(SetReorderPoint(store_id=store, sku=sku, minimum=quantity,
                                            occurred_at=at, now=now))  # fmt: skip
    return commands


def oracle(replica_url: str, store: str) -> dict[tuple[date, str, str], tuple[int, Decimal]]:
    """The totals, folded in Python from the events copy's JSON."""
    folded: dict[tuple[date, str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    with psycopg.connect(replica_url) as conn:
        rows = conn.execute(
            "SELECT type, sku, occurred_at, data FROM events WHERE store = %s AND type LIKE"
            " 'stock.%%' AND type <> 'stock.reorder_point_set'",
            (store,),
        ).fetchall()
    for event_type, sku, occurred_at, data in rows:
        raw = data.get("quantity", data.get("delta", data.get("counted")))
        key = (occurred_at.astimezone(UTC).date(), sku, event_type)
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


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_daily_totals_equal_a_python_fold_of_the_events_whatever_the_batch(
    settings: Settings, store_id: str, replica_pool: ConnectionPool, batch_size: int
) -> None:
    skus = [f"{name}.{store_id}" for name in ("A", "B", "C")]
    run_commands(settings, *history(store_id, skus, seed=batch_size, count=120))
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
    run_commands(settings, *history(store_id, skus, seed=42, count=40))
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
