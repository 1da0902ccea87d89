"""The stock read models equal a plain-Python oracle of the same events, and themselves
after a rebuild; as_of/known_at match the oracle; alerts do not depend on batching."""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.cli import projections as admin
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.projectors.engine import LOCK_PREFIX, project, reset
from inventory.projectors.lag import lags
from inventory.projectors.rebuild import rebuild
from inventory.projectors.rebuild_fold import RebuildFailed
from inventory.readmodels.bitemporal import level_at
from inventory.readmodels.catalog import Catalog
from inventory.readmodels.registry import PROJECTORS
from inventory.readmodels.stock_levels.projector import StockLevels
from inventory.readmodels.stream_heads import StreamHeads
from inventory.runtime.settings import Settings
from tests import read_oracle as oracle
from tests.events import Counted
from tests.projection_helpers import store as event_store
from tests.projection_helpers import wait_replicated
from tests.read_history import History, generate

COMMANDS = 2000
EVENTS = """
SELECT seq, position, version, store, sku, type, occurred_at, recorded_at, data::text
FROM events WHERE store = ANY(%s) AND type LIKE 'stock.%%' ORDER BY seq
"""
LEVELS = """
SELECT store, sku, on_hand, reserved, available, in_transit_in, in_transit_out, reorder_min,
       reorder_max, version, last_seq, updated_at, state
FROM stock_levels WHERE store = ANY(%s) ORDER BY store, sku
"""
LEDGER = "SELECT * FROM stock_ledger WHERE store = ANY(%s) ORDER BY seq"
ALERTS = """
SELECT store, sku, kind, opened_seq, opened_at, closed_seq, closed_at, details
FROM alerts WHERE store = ANY(%s) ORDER BY store, sku, kind, opened_seq
"""


@pytest.fixture(scope="module")
async def history(settings: Settings) -> History:
    made = await generate(settings.primary_url, seed=20261124, commands=COMMANDS)
    _wait_replicated(settings, made.stores)
    return made


@pytest.fixture(scope="module")
def pool(settings: Settings) -> Iterator[ConnectionPool]:
    with ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as opened:
        yield opened


def _wait_replicated(settings: Settings, stores: list[str]) -> None:
    query = "SELECT count(*) FROM events WHERE store = ANY(%s)"
    with psycopg.connect(settings.primary_url) as primary:
        expected = primary.execute(query, (stores,)).fetchone()
    deadline = time.monotonic() + 60
    with psycopg.connect(settings.replica_url, autocommit=True) as replica:
        while replica.execute(query, (stores,)).fetchone() != expected:
            assert time.monotonic() < deadline, "events did not reach the replica"
            time.sleep(0.05)


def _project(pool: ConnectionPool, stores: list[str], batch_size: int = 1000) -> None:
    for projector in (StockLevels(), Catalog()):
        for partition in ["", *stores]:
            project(pool, projector, partition, batch_size=batch_size)


def _rows(pool: ConnectionPool, query: str, stores: list[str]) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query, (stores,)).fetchall()


def _facts(pool: ConnectionPool, stores: list[str]) -> dict[tuple[str, str], list[oracle.Fact]]:
    by_item: dict[tuple[str, str], list[oracle.Fact]] = defaultdict(list)
    for fact in oracle.facts(_rows(pool, EVENTS, stores)):
        by_item[(fact.store, fact.sku)].append(fact)
    return by_item


def test_levels_ledger_and_alerts_equal_the_oracle(history: History, pool: ConnectionPool) -> None:
    _project(pool, history.stores)
    facts = _facts(pool, history.stores)

    levels = {(r[0], r[1]): r for r in _rows(pool, LEVELS, history.stores)}
    assert set(levels) == set(facts)
    for item, item_facts in facts.items():
        expected = oracle.level(item_facts)
        row = levels[item]
        assert row[2:8] == tuple(
            expected[k]
            for k in (
                "on_hand",
                "reserved",
                "available",
                "in_transit_in",
                "in_transit_out",
                "reorder_min",
            )
        ), item
        assert (row[9], row[10]) == (item_facts[-1].version, item_facts[-1].seq)

    ledger = _rows(pool, LEDGER, history.stores)
    got = [(r[0], r[5], r[13], r[14], r[15], r[21]) for r in ledger]
    want = sorted((row for f in facts.values() for row in oracle.ledger(f)), key=lambda r: r[0])
    assert got == want
    assert sum(row[-1] for row in got) > 0, "the history has absorbed late events"

    alerts = [(r[0], r[1], r[2], r[3], r[5]) for r in _rows(pool, ALERTS, history.stores)]
    want_alerts = sorted(
        (item[0], item[1], kind, opened, closed)
        for item, f in facts.items()
        for kind, opened, closed in oracle.alerts(f)
    )
    assert alerts == want_alerts
    assert {a[2] for a in alerts} == {"low_stock", "negative_stock", "count_discrepancy"}
    assert history.accepted > COMMANDS // 2


async def test_as_of_and_known_at_match_the_oracle_at_random_times(
    history: History, pool: ConnectionPool, settings: Settings
) -> None:
    _project(pool, history.stores)
    facts = _facts(pool, history.stores)
    times = sorted(
        {f.occurred_at for fs in facts.values() for f in fs}
        | {f.recorded_at for fs in facts.values() for f in fs}
    )
    rng = random.Random(7)
    async with await psycopg.AsyncConnection.connect(settings.replica_url) as conn:
        for _ in range(300):
            item = rng.choice(sorted(facts))
            when = rng.choice(times) + timedelta(microseconds=rng.choice([-1, 0, 1]))
            known = rng.choice(times) if rng.random() < 0.7 else times[-1]
            got = await level_at(conn, *item, when, known)
            want = oracle.as_of(facts[item], when, known)
            assert (got.on_hand, got.reserved, got.in_transit_in, got.in_transit_out) == (
                want["on_hand"],
                want["reserved"],
                want["in_transit_in"],
                want["in_transit_out"],
            ), (item, when, known)


@pytest.mark.parametrize("batch_size", [1, 13, 1000])
def test_alerts_open_and_close_once_however_the_events_are_batched(
    history: History, pool: ConnectionPool, batch_size: int
) -> None:
    facts = _facts(pool, history.stores)
    with pool.connection() as conn:
        reset(conn, StockLevels())
    _project(pool, history.stores, batch_size=batch_size)

    alerts = [(r[0], r[1], r[2], r[3], r[5]) for r in _rows(pool, ALERTS, history.stores)]
    assert alerts == sorted(
        (item[0], item[1], kind, opened, closed)
        for item, f in facts.items()
        for kind, opened, closed in oracle.alerts(f)
    )


def test_a_rebuild_gives_the_same_rows(
    history: History, pool: ConnectionPool, settings: Settings
) -> None:
    _project(pool, history.stores)
    before = [_rows(pool, q, history.stores) for q in (LEVELS, LEDGER, ALERTS)]

    for name in ("stock", "catalog"):
        assert admin.rebuild(settings.replica_url, name, out=io.StringIO()) == 0

    after = [_rows(pool, q, history.stores) for q in (LEVELS, LEDGER, ALERTS)]
    assert after == before
    assert len(before[1]) > COMMANDS


@pytest.mark.parametrize("workers", [1, 2])
def test_queries_read_the_old_rows_until_a_rebuild_commits(
    history: History, pool: ConnectionPool, settings: Settings, workers: int
) -> None:
    _project(pool, history.stores)
    before = _rows(pool, LEVELS, history.stores)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        query = "SELECT count(*) FROM stock_levels WHERE store = ANY(%s)"
        with psycopg.connect(settings.replica_url, autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(query, (history.stores,)).fetchone()
                seen.append(row[0] if row else -1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    out = io.StringIO()
    try:
        admin.rebuild(settings.replica_url, "stock", out=out, batch_size=50, workers=workers)
    finally:
        stop.set()
        watcher.join()

    assert len(seen) > 10
    assert set(seen) == {len(before)}
    assert _rows(pool, LEVELS, history.stores) == before
    assert "rebuilt stock" in out.getvalue()


SHAPES = {
    "products": "SELECT * FROM products ORDER BY sku",
    "stores": "SELECT * FROM stores ORDER BY id",
    "stream_heads": "SELECT stream, partition, version, last_seq FROM stream_heads ORDER BY stream",
    "daily_movements": "SELECT store, day, sku, type, count, quantity FROM daily_movements"
    " ORDER BY store, day, sku, type",
    "checkpoints": "SELECT projector, partition, seq, position FROM projector_checkpoints"
    " ORDER BY projector, partition",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename NOT LIKE 'scratch%%' ORDER BY indexname",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "grants": "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
    " WHERE grantee = 'inventory_app' ORDER BY 1, 2",
}


def _everything(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.replica_url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in SHAPES.items()}


async def _append_everywhere(settings: Settings) -> None:
    with psycopg.connect(settings.replica_url) as replica:
        partitions = [row[0] for row in replica.execute("SELECT DISTINCT partition FROM events")]
    stream = f"test-everywhere-{uuid.uuid4().hex[:8]}"
    events = [NewEvent(Counted(value=1), store=partition or None) for partition in partitions]
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        recorded = await event_store.append(conn, [StreamWrite(stream, events)])
        await conn.commit()
    wait_replicated(settings.replica_url, [r.position for r in recorded])


def _catch_up_all(settings: Settings) -> None:
    with (
        ConnectionPool(settings.replica_url, min_size=1, max_size=2, open=True) as pool,
        pool.connection() as conn,
    ):
        partitions = sorted({lag.partition for lag in lags(conn, PROJECTORS)})
        for projector in PROJECTORS:
            for partition in partitions:
                project(pool, projector, partition)


@pytest.mark.parametrize("workers", [1, 3])
def test_one_pass_over_every_projector_gives_the_same_rows_tables_and_checkpoints(
    history: History, pool: ConnectionPool, settings: Settings, workers: int
) -> None:
    # A stream with an event in every partition (as a transfer has one in each of its two
    # stores): however the partitions are shared out, two folds each see part of it.
    asyncio.run(_append_everywhere(settings))
    _catch_up_all(settings)
    before = [_rows(pool, q, history.stores) for q in (LEVELS, LEDGER, ALERTS)]
    shapes = _everything(settings)
    out = io.StringIO()

    # 3: this process and two helper processes, each folding a share of the partitions.
    names = [p.name for p in PROJECTORS]
    assert admin.rebuild(settings.replica_url, names, out=out, workers=workers) == 0

    assert [_rows(pool, q, history.stores) for q in (LEVELS, LEDGER, ALERTS)] == before
    assert _everything(settings) == shapes
    assert "rebuilt stream_heads, stock, catalog, daily_movements" in out.getvalue()
    with psycopg.connect(settings.replica_url) as conn:
        # The alerts' id sequence moved to the new table and goes on from where it was.
        row = conn.execute("SELECT pg_get_serial_sequence('alerts', 'id')").fetchone()
        assert row == ("public.alerts_id_seq",)
        leftovers = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%__rebuild%%'")
        assert leftovers.fetchall() == []


class _Unknown(StreamHeads):
    """stream_heads under a name no helper process knows: the helpers fail."""

    name = "no_such_projector"


def test_a_failed_parallel_rebuild_leaves_the_old_tables_and_no_shadows(
    history: History, settings: Settings
) -> None:
    _catch_up_all(settings)
    shapes = _everything(settings)

    with pytest.raises(RebuildFailed, match="no_such_projector"):
        rebuild(settings.replica_url, [_Unknown()], lambda _: None, workers=3)

    assert _everything(settings) == shapes
    with psycopg.connect(settings.replica_url) as conn:
        leftovers = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%__rebuild%%'")
        assert leftovers.fetchall() == []


def test_a_parallel_rebuild_whose_index_build_fails_leaves_the_old_tables_and_no_shadows(
    history: History, settings: Settings
) -> None:
    _catch_up_all(settings)
    shapes = _everything(settings)

    def duplicate_a_head(phase: str) -> None:
        # Once the folds' rows are committed: a second row for a stream, which the
        # shadow's primary key (built next, in another session) refuses.
        if phase == "merge":
            with psycopg.connect(settings.replica_url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO stream_heads__rebuild (stream, partition, version, last_seq)"
                    " SELECT stream, partition, version, last_seq FROM stream_heads__rebuild"
                    " LIMIT 1"
                )

    with pytest.raises(psycopg.errors.UniqueViolation):
        rebuild(
            settings.replica_url,
            [StreamHeads()],
            lambda _: None,
            workers=2,
            on_phase=duplicate_a_head,
            set_based=False,  # folded by two processes, not built by SQL
        )

    assert _everything(settings) == shapes
    with psycopg.connect(settings.replica_url) as conn:
        leftovers = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%__rebuild%%'")
        assert leftovers.fetchall() == []


def test_a_worker_batch_waits_for_a_rebuild_then_resumes_from_its_checkpoints(
    history: History, pool: ConnectionPool, settings: Settings
) -> None:
    _project(pool, history.stores)
    before = _rows(pool, LEVELS, history.stores)
    store = history.stores[0]
    with psycopg.connect(settings.replica_url) as conn:
        # What a rebuild holds from its start to its commit.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + "stock",))
        conn.execute("DELETE FROM projector_checkpoints WHERE projector = 'stock'")
        done = threading.Event()
        batch = threading.Thread(target=lambda: (project(pool, StockLevels(), store), done.set()))
        batch.start()
        deadline = time.monotonic() + 30
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'"
        while conn.execute(waiting).fetchone() != (1,):
            assert time.monotonic() < deadline, "the batch did not wait for the lock"
            time.sleep(0.02)
        assert not done.is_set()
        conn.rollback()  # the "rebuild" gives up: the checkpoints are back
    batch.join(30)
    assert done.is_set()
    assert _rows(pool, LEVELS, history.stores) == before


def test_an_unknown_table_cannot_be_swapped(settings: Settings) -> None:
    with (
        psycopg.connect(settings.replica_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT read_model_shadow(%s)", (["projector_checkpoints"],))


@pytest.mark.parametrize(
    ("table", "kind", "name"),
    [
        ("projector_checkpoints", "analyze", None),  # not a read model
        ("stock_ledger", "index", "no_such_index"),
        ("stock_ledger", "index", "stock_ledger_pkey"),  # a constraint's, not an index
        ("stock_ledger", "constraint", "stock_ledger_item_seq"),  # an index, not a constraint
        ("stock_ledger", "drop", None),
    ],
)
def test_an_index_step_builds_only_what_the_read_model_itself_has(
    settings: Settings, table: str, kind: str, name: str | None
) -> None:
    with (
        psycopg.connect(settings.replica_url) as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute("SELECT read_model_shadow(%s)", (["stock_ledger"],))
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.RaiseException)):
            conn.execute("SELECT read_model_index_step(%s, %s, %s)", (table, kind, name))


def test_readers_do_not_queue_behind_a_swap_waiting_for_a_long_query(
    history: History, pool: ConnectionPool, settings: Settings
) -> None:
    _project(pool, history.stores)
    before = _rows(pool, LEVELS, history.stores)
    count = "SELECT count(*) FROM stock_levels WHERE store = ANY(%s)"
    with psycopg.connect(settings.replica_url) as long_reader:
        long_reader.execute(count, (history.stores,))  # holds its lock until it commits
        rebuilt = threading.Event()

        def rebuild() -> None:
            admin.rebuild(settings.replica_url, "stock", out=io.StringIO())
            rebuilt.set()

        rebuilder = threading.Thread(target=rebuild)
        rebuilder.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"
        # Queued behind the swap's lock, this reader would wait for the long one: the
        # statement timeout makes that a failure rather than a hang.
        timeout = "-c statement_timeout=20000"
        with psycopg.connect(settings.replica_url, autocommit=True, options=timeout) as reader:
            deadline = time.monotonic() + 60
            while reader.execute(waiting).fetchone() == (0,):  # the swap asks for its lock
                assert time.monotonic() < deadline, "the rebuild never reached its swap"
                time.sleep(0.01)
            for _ in range(5):  # new queries get through between the swap's attempts
                assert reader.execute(count, (history.stores,)).fetchone() == (len(before),)
        assert not rebuilt.is_set()
        long_reader.commit()
    rebuilder.join(60)
    assert rebuilt.is_set()
    assert _rows(pool, LEVELS, history.stores) == before
