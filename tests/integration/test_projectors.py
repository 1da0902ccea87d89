"""The projector engine on the replica: commit order, exactly-once, idempotent wake-ups."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.domain.events import ALL_EVENTS, StockReceived
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.projectors.backlog import backlogs
from inventory.projectors.catch_up import catch_up_partitions, project_partition
from inventory.projectors.engine import LOCK_PREFIX, project
from inventory.projectors.lag import lags
from inventory.readmodels.registry import PROJECTORS
from inventory.readmodels.stock_levels.projector import StockLevels
from inventory.readmodels.stream_heads import StreamHeads
from inventory.runtime.settings import Settings
from tests.projection_helpers import (
    append_counted,
    checkpoint_of,
    heads_of,
    new_stream,
    wait_replicated,
)

heads = StreamHeads()
stock_store = EventStore(Codec(ALL_EVENTS))


@pytest.fixture(scope="module")
def replica_pool(settings: Settings) -> ConnectionPool:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=4, open=True) as pool:
        yield pool


async def test_a_stores_appends_commit_in_position_order_and_are_projected_once(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    """Out-of-order commits within one store cannot happen since the chain (migration
    0081): a second append of the store waits for the first one's commit, so position,
    commit, `seq` and chain orders agree and the projector sees them in that order."""
    stream_a, stream_b = new_stream(store_id), new_stream(store_id)
    conn_a = await psycopg.AsyncConnection.connect(settings.primary_url)
    conn_b = await psycopg.AsyncConnection.connect(settings.primary_url)
    async with conn_a, conn_b:
        async with conn_a.transaction():
            [position_a] = await append_counted(conn_a, stream_a, store_id)
            await conn_b.set_autocommit(True)  # each transaction() a real BEGIN and COMMIT
            await conn_b.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                async with conn_b.transaction():  # B must wait for A's commit
                    await append_counted(conn_b, stream_b, store_id)
        async with conn_b.transaction():
            [position_b] = await append_counted(conn_b, stream_b, store_id)
        wait_replicated(settings.replica_url, [position_a, position_b])
        project(replica_pool, heads, store_id)
        project(replica_pool, heads, store_id)  # a second pass changes nothing

    assert position_a < position_b
    with psycopg.connect(settings.replica_url) as conn:
        seqs = dict(
            conn.execute(
                "SELECT position, seq FROM events WHERE position = ANY(%s)",
                ([position_a, position_b],),
            ).fetchall()
        )
    assert seqs[position_a] < seqs[position_b]
    rows = heads_of(settings.replica_url, store_id)
    assert sorted((stream, version) for stream, version, _ in rows) == sorted(
        [(stream_a, 1), (stream_b, 1)]
    )
    assert checkpoint_of(settings.replica_url, store_id) == seqs[position_b]


async def test_repeated_and_reordered_runs_change_nothing(
    settings: Settings, store_id: str, replica_pool: ConnectionPool, resources: object
) -> None:
    stream = new_stream(store_id)
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        async with conn.transaction():
            positions = await append_counted(conn, stream, store_id, count=5)
    wait_replicated(settings.replica_url, positions)

    assert project(replica_pool, heads, store_id) == 5
    first = heads_of(settings.replica_url, store_id)
    assert project(replica_pool, heads, store_id) == 0
    assert project(replica_pool, heads, store_id, batch_size=2) == 0

    assert heads_of(settings.replica_url, store_id) == first
    assert first[0][1] == 5


async def test_batches_smaller_than_the_backlog_catch_up_completely(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    streams = [new_stream(store_id) for _ in range(7)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for stream in streams:
            async with conn.transaction():
                positions += await append_counted(conn, stream, store_id, count=3)
    wait_replicated(settings.replica_url, positions)

    assert project(replica_pool, heads, store_id, batch_size=4) == 21

    assert [row[1] for row in heads_of(settings.replica_url, store_id)] == [3] * 7
    with replica_pool.connection() as conn:
        lag = next(x for x in lags(conn, [heads]) if x.partition == store_id)
    assert lag.behind == 0


async def test_backlogs_count_each_partitions_unprojected_events_up_to_the_limit(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    behind, caught_up, deep = f"{store_id}-behind", f"{store_id}-caught-up", f"{store_id}-deep"
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for partition, count in ((caught_up, 4), (behind, 3), (deep, 9)):
            positions += await append_counted(conn, new_stream(partition), partition, count)
    wait_replicated(settings.replica_url, positions)
    project(replica_pool, heads, caught_up)
    project(replica_pool, heads, behind, batch_size=2)  # every batch commits: none left
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        positions = await append_counted(conn, new_stream(behind), behind, count=2)
    wait_replicated(settings.replica_url, positions)

    async with await psycopg.AsyncConnection.connect(settings.replica_url) as conn:
        found = await backlogs(conn, ["stream_heads"], limit=5, max_age=3600)
        aged = await backlogs(conn, ["stream_heads"], limit=5, max_age=0)

    mine = {b.partition: b.events for b in found if b.partition.startswith(store_id)}
    assert mine == {behind: 2, deep: 5}
    assert {b.partition: b.events for b in aged if b.partition.startswith(store_id)} == {
        behind: None,
        deep: None,
    }


async def _receive(
    settings: Settings, store_id: str, quantities: list[int], start: int = 0
) -> list[int]:
    """One stock.received per quantity, alternating two SKUs (SKU0 for an even index
    counted from `start`); returns their replica seqs."""
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for n, quantity in enumerate(quantities, start):
            sku = f"SKU{n % 2}"
            received = StockReceived(
                store_id=store_id,
                sku=sku,
                quantity=Decimal(quantity),
                occurred_at=datetime.now(UTC),
            )
            write = StreamWrite(f"stock-{store_id}-{sku}", [NewEvent(received, store_id, sku)], ANY)
            positions += [r.position for r in await stock_store.append(conn, [write])]
    wait_replicated(settings.replica_url, positions)
    with psycopg.connect(settings.replica_url) as conn:
        rows = conn.execute(
            "SELECT seq FROM events WHERE position = ANY(%s) ORDER BY seq", (positions,)
        )
        return [row[0] for row in rows.fetchall()]


def _read_models(replica_url: str, store_id: str) -> dict[str, Any]:
    with psycopg.connect(replica_url) as conn:
        return {
            "ledger": conn.execute(
                "SELECT seq, on_hand_after FROM stock_ledger WHERE store = %s ORDER BY seq",
                (store_id,),
            ).fetchall(),
            "levels": conn.execute(
                "SELECT sku, on_hand, last_seq FROM stock_levels WHERE store = %s ORDER BY sku",
                (store_id,),
            ).fetchall(),
            "movements": conn.execute(
                "SELECT sku, sum(count)::int, sum(quantity) FROM daily_movements"
                " WHERE store = %s GROUP BY sku ORDER BY sku",
                (store_id,),
            ).fetchall(),
            "heads": conn.execute(
                "SELECT stream, version FROM stream_heads WHERE partition = %s ORDER BY stream",
                (store_id,),
            ).fetchall(),
            "checkpoints": dict(
                conn.execute(
                    "SELECT projector, seq FROM projector_checkpoints WHERE partition = %s",
                    (store_id,),
                ).fetchall()
            ),
        }


def _expected(store_id: str, seqs: list[int], quantities: list[int]) -> dict[str, Any]:
    """Every read model of `_receive`'s events, each event applied exactly once."""
    on_hand = {"SKU0": 0, "SKU1": 0}
    ledger = []
    for n, (seq, quantity) in enumerate(zip(seqs, quantities, strict=True)):
        on_hand[f"SKU{n % 2}"] += quantity
        ledger.append((seq, Decimal(on_hand[f"SKU{n % 2}"])))
    skus = ["SKU0", "SKU1"]
    return {
        "ledger": ledger,
        "levels": [
            (sku, Decimal(on_hand[sku]), max(s for n, s in enumerate(seqs) if n % 2 == i))
            for i, sku in enumerate(skus)
        ],
        "movements": [
            (sku, len(quantities[i::2]), Decimal(sum(quantities[i::2])))
            for i, sku in enumerate(skus)
        ],
        "heads": [(f"stock-{store_id}-{sku}", len(quantities[i::2])) for i, sku in enumerate(skus)],
        "checkpoints": dict.fromkeys((p.name for p in PROJECTORS), seqs[-1]),
    }


async def test_one_pass_gives_projectors_at_different_checkpoints_each_their_own_events(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    quantities = [1, 2, 4, 8, 16, 32, 64]  # every subset has its own sum
    seqs = await _receive(settings, store_id, quantities[:2])
    project(replica_pool, heads, store_id)  # stream_heads alone: at the 2nd event
    seqs += await _receive(settings, store_id, quantities[2:5], 2)
    project(replica_pool, StockLevels(), store_id)  # stock alone: at the 5th
    seqs += await _receive(settings, store_id, quantities[5:], 5)  # catalog, movements: nowhere

    applied = project_partition(replica_pool, PROJECTORS, store_id, batch_size=3)

    assert applied == {"stream_heads": 5, "stock": 2, "catalog": 7, "daily_movements": 7}
    assert _read_models(settings.replica_url, store_id) == _expected(store_id, seqs, quantities)
    assert project_partition(replica_pool, PROJECTORS, store_id) == dict.fromkeys(
        (p.name for p in PROJECTORS), 0
    )
    assert _read_models(settings.replica_url, store_id) == _expected(store_id, seqs, quantities)


async def test_one_pass_over_several_partitions_gives_each_its_own_events(
    settings: Settings, replica_pool: ConnectionPool
) -> None:
    first, second = (f"s{uuid.uuid4().hex[:10]}" for _ in range(2))
    quantities = [1, 2, 4, 8, 16, 32, 64]
    seqs = {first: await _receive(settings, first, quantities[:3])}
    project(replica_pool, StockLevels(), first)  # stock alone: at the 3rd event of `first`
    seqs[first] += await _receive(settings, first, quantities[3:], 3)
    seqs[second] = await _receive(settings, second, quantities[:5])

    with replica_pool.connection() as conn:  # batches of 2 per partition: 4 rounds for first
        applied = catch_up_partitions(conn, PROJECTORS, [second, first, first], batch_size=2)

    assert applied == {"stream_heads": 12, "stock": 9, "catalog": 12, "daily_movements": 12}
    assert _read_models(settings.replica_url, first) == _expected(first, seqs[first], quantities)
    assert _read_models(settings.replica_url, second) == _expected(
        second, seqs[second], quantities[:5]
    )
    with replica_pool.connection() as conn:
        again = catch_up_partitions(conn, PROJECTORS, [first, second])
    assert again == dict.fromkeys((p.name for p in PROJECTORS), 0)


async def test_a_stock_projector_reads_an_item_another_process_moved_on_from_its_row(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    quantities = [1, 2, 4, 8, 16, 32]
    here, elsewhere = StockLevels(), StockLevels()  # two worker processes' projectors
    seqs = await _receive(settings, store_id, quantities[:2])
    assert project(replica_pool, here, store_id) == 2  # keeps both items' states
    seqs += await _receive(settings, store_id, quantities[2:4], 2)
    assert project(replica_pool, elsewhere, store_id) == 2
    seqs += await _receive(settings, store_id, quantities[4:], 4)

    assert project(replica_pool, here, store_id) == 2  # its kept states are two events old

    expected = _expected(store_id, seqs, quantities)
    read = _read_models(settings.replica_url, store_id)
    assert (read["ledger"], read["levels"]) == (expected["ledger"], expected["levels"])


async def test_a_projector_a_rebuild_holds_waits_while_the_others_go_on(
    settings: Settings, store_id: str, replica_pool: ConnectionPool
) -> None:
    quantities = [3, 5, 7]
    seqs = await _receive(settings, store_id, quantities)
    with psycopg.connect(settings.replica_url) as rebuild:
        # What a rebuild of `stock` holds from its start to its commit.
        rebuild.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + "stock",))
        done: list[dict[str, int]] = []
        worker = threading.Thread(
            target=lambda: done.append(project_partition(replica_pool, PROJECTORS, store_id))
        )
        worker.start()
        deadline = time.monotonic() + 30
        while checkpoint_of(settings.replica_url, store_id, "daily_movements") != seqs[-1]:
            assert time.monotonic() < deadline, "the other projectors did not go on"
            time.sleep(0.02)
        assert checkpoint_of(settings.replica_url, store_id, "stock") == 0
        assert not done
        rebuild.rollback()
    worker.join(30)

    assert done == [{"stream_heads": 3, "stock": 3, "catalog": 3, "daily_movements": 3}]
    assert _read_models(settings.replica_url, store_id) == _expected(store_id, seqs, quantities)
