"""The read models a rebuild builds by SQL (stream heads, daily totals) equal the live
projectors' rows and the Python fold's over every kind of movement, zones and day
boundaries; an event a projector cannot take stops a rebuild of it there, as it stops
the live projector, and the rest is rebuilt."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.cli import projections as admin
from inventory.domain import stock_events as s
from inventory.domain.events import StoreOpened, StoreUpdated
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.projectors.engine import project
from inventory.projectors.rebuild import rebuild
from inventory.readmodels.registry import PROJECTORS, by_name
from inventory.runtime.settings import Settings
from inventory.wiring import build_worker
from tests.projection_helpers import stock_store, wait_replicated

MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)  # a UTC day boundary
TICK = timedelta(microseconds=1)
PROJECTED = ("stream_heads", "daily_movements")


def _movements(store: str, sku: str, at: datetime) -> list[Any]:
    """One event of every movement type (and a reorder point) at `at`."""
    q = Decimal("1.25")
    common: dict[str, Any] = {"store_id": store, "sku": sku, "occurred_at": at}
    return [
        s.StockReceived(quantity=Decimal(10), **common),
        s.StockSold(quantity=q, sale_id="sale", **common),
        s.StockReturned(quantity=Decimal("0.5"), sale_id="sale", **common),
        s.StockAdjusted(delta=Decimal("-2.125"), reason="damaged", **common),
        s.StockCounted(counted=Decimal(7), **common),
        s.StockReserved(quantity=q, reservation_id="r1", **common),
        s.StockReservationReleased(quantity=q, reservation_id="r1", **common),
        s.StockReservationExpired(quantity=q, reservation_id="r2", **common),
        s.StockReservationFulfilled(quantity=q, reservation_id="r3", sale_id="x", **common),
        s.StockTransferDispatched(quantity=q, transfer_id="t", to_store="elsewhere", **common),
        s.StockTransferIncoming(quantity=q, transfer_id="t", from_store="elsewhere", **common),
        s.StockTransferReceived(quantity=q, transfer_id="t", from_store="elsewhere", **common),
        s.StockTransferDelivered(quantity=q, transfer_id="t", to_store="elsewhere", **common),
        s.StockTransferCancelled(quantity=q, transfer_id="u", to_store="elsewhere", **common),
        s.StockTransferWithdrawn(quantity=q, transfer_id="u", from_store="elsewhere", **common),
        s.StockReorderPointSet(minimum=Decimal(3), **common),
    ]


def _history(tag: str) -> tuple[list[str], list[StreamWrite]]:
    """Stores in zones far from UTC, changing zone, with an unknown zone, with none, with
    one event, with no movement; movements a microsecond either side of midnight in UTC
    and in the store's zone, backdated ones; a stream in two stores."""
    east, west, unknown, bare, lone, quiet = (f"z{tag}{n}" for n in range(6))
    plan: list[tuple[str, str, Any]] = []  # stream, store, event

    def item(store: str, sku: str, ats: list[datetime]) -> None:
        for at in ats:
            plan.extend((f"stock-{store}-{sku}", store, e) for e in _movements(store, sku, at))

    def opened(store: str, zone: str) -> None:
        plan.append(
            (f"store-{store}", store, StoreOpened(store_id=store, name=store, timezone=zone))
        )

    def one(store: str, event: Any, stream: str = "") -> None:
        plan.append((stream or f"stock-{store}-{event.sku}", store, event))

    hour = timedelta(hours=1)
    opened(east, "Pacific/Kiritimati")  # UTC+14: 09:59:59.999999Z is the day before 10:00Z
    item(east, "A", [MIDNIGHT + 10 * hour - TICK, MIDNIGHT + 10 * hour])
    plan.append((f"store-{east}", east, StoreUpdated(store_id=east, name="renamed")))
    item(east, "A", [MIDNIGHT - timedelta(days=40)])  # backdated, still UTC+14
    plan.append((f"store-{east}", east, StoreUpdated(store_id=east, timezone="America/St_Johns")))
    item(east, "B", [MIDNIGHT + 3.5 * hour - TICK, MIDNIGHT - timedelta(days=3)])  # UTC-3:30
    opened(west, "Pacific/Pago_Pago")  # UTC-11
    item(west, "A", [MIDNIGHT + 11 * hour - TICK, MIDNIGHT + 11 * hour])
    opened(unknown, "Mars/Olympus")  # no such zone: UTC
    item(unknown, "A", [MIDNIGHT - TICK, MIDNIGHT])
    item(bare, "A", [MIDNIGHT - TICK, MIDNIGHT, MIDNIGHT + timedelta(days=1)])  # no store event
    one(lone, s.StockReceived(store_id=lone, sku="A", quantity=Decimal(1), occurred_at=MIDNIGHT))
    one(
        quiet,
        s.StockReorderPointSet(store_id=quiet, sku="A", minimum=Decimal(1), occurred_at=MIDNIGHT),
    )
    # One stream with events in two stores (a transfer's).
    moved: dict[str, Any] = {
        "sku": "C",
        "quantity": Decimal(1),
        "transfer_id": "v",
        "occurred_at": MIDNIGHT,
    }
    one(east, s.StockTransferDispatched(store_id=east, to_store=west, **moved), f"transfer-{tag}")
    one(west, s.StockTransferIncoming(store_id=west, from_store=east, **moved), f"transfer-{tag}")
    writes = [
        StreamWrite(
            stream,
            [NewEvent(e, store, getattr(e, "sku", None), getattr(e, "occurred_at", None))],
        )
        for stream, store, e in plan
    ]
    return [east, west, unknown, bare, lone, quiet], writes


def _counted_nowhere(tag: str) -> StreamWrite:
    """An event of no store (partition ''), of a type no read model decodes."""
    from tests.events import Counted

    return StreamWrite(f"nowhere-{tag}", [NewEvent(Counted(value=1))])


async def _append(settings: Settings, writes: list[StreamWrite]) -> None:
    from tests.projection_helpers import store as test_store

    positions: list[int] = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for write in writes:  # one commit each: seq order is the plan's order
            events_store = test_store if write.stream.startswith("nowhere-") else stock_store
            positions += [r.position for r in await events_store.append(conn, [write])]
            await conn.commit()
    wait_replicated(settings.replica_url, positions)


TABLES = {
    "stream_heads": "SELECT stream, partition, version, last_seq FROM stream_heads"
    " WHERE stream LIKE %(like)s ORDER BY stream",
    "daily_movements": "SELECT store, day, sku, type, count, quantity FROM daily_movements"
    " WHERE store = ANY(%(stores)s) ORDER BY store, day, sku, type",
    "daily_movement_zones": "SELECT store, timezone FROM daily_movement_zones"
    " WHERE store = ANY(%(stores)s) ORDER BY store",
    "checkpoints": "SELECT projector, partition, seq, position FROM projector_checkpoints"
    " WHERE partition = ANY(%(stores)s) AND projector = ANY(%(names)s)"
    " ORDER BY projector, partition",
}


def _rows(settings: Settings, tag: str, stores: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    arguments = {"like": f"%{tag}%", "stores": stores, "names": list(PROJECTED)}
    with psycopg.connect(settings.replica_url) as conn:
        return {name: conn.execute(q, arguments).fetchall() for name, q in TABLES.items()}


@pytest.fixture(scope="module")
async def made(settings: Settings) -> tuple[str, list[str]]:
    tag = uuid.uuid4().hex[:6]
    stores, writes = _history(tag)
    await _append(settings, [*writes, _counted_nowhere(tag)])
    # The live projectors, partition by partition in name order (as a rebuild folds).
    with ConnectionPool(settings.replica_url, min_size=1, max_size=1, open=True) as pool:
        for name in PROJECTED:
            for partition in sorted(["", *stores]):
                project(pool, by_name(name), partition)
    return tag, stores


def test_the_live_rows_are_the_days_each_store_s_zone_gives(
    settings: Settings, made: tuple[str, list[str]]
) -> None:
    tag, (east, west, unknown, bare, lone, quiet) = made
    rows = _rows(settings, tag, [east, west, unknown, bare, lone, quiet])
    days = {(r[0], r[2]): set() for r in rows["daily_movements"]}
    for store, day, sku, *_ in rows["daily_movements"]:
        days[(store, sku)].add(day)
    first = date(2026, 3, 2)
    assert days[(east, "A")] == {first, first + timedelta(days=1), date(2026, 1, 21)}
    assert days[(east, "B")] == {first - timedelta(days=1), date(2026, 2, 26)}  # UTC-3:30
    assert days[(west, "A")] == {first - timedelta(days=1), first}  # UTC-11
    assert days[(unknown, "A")] == days[(bare, "A")] - {first + timedelta(days=1)}
    assert days[(bare, "A")] == {first - timedelta(days=1), first, first + timedelta(days=1)}
    assert days[(lone, "A")] == {first}
    assert (quiet, "A") not in days
    assert rows["daily_movement_zones"] == [
        (east, "America/St_Johns"),
        (west, "Pacific/Pago_Pago"),
        (unknown, "Mars/Olympus"),
    ]
    heads = {r[0]: r for r in rows["stream_heads"]}
    assert heads[f"transfer-{tag}"][1:3] == (min(east, west), 2)
    assert heads[f"nowhere-{tag}"][1] == ""


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("set_based", [True, False])
def test_a_rebuild_gives_the_live_rows(
    settings: Settings, made: tuple[str, list[str]], workers: int, set_based: bool
) -> None:
    tag, stores = made
    live = _rows(settings, tag, stores)

    projectors = [p for p in PROJECTORS if p.name in PROJECTED]
    rebuild(settings.replica_url, projectors, lambda _: None, workers=workers, set_based=set_based)

    assert _rows(settings, tag, stores) == live


# Far above any position the primary hands out in a test session.
POISON_POSITION = 8_000_000_000_000_000_000
STALL_FIELDS = """
SELECT projector, partition, seq, position, stream, event_type, error_class, error
FROM projection_stalls WHERE partition = %s ORDER BY projector
"""
CHECKPOINTS = """
SELECT projector, seq, position FROM projector_checkpoints WHERE partition = %s ORDER BY 1
"""


@pytest.fixture
def poisoned(settings: Settings) -> Iterator[tuple[str, int]]:
    """A store with a receipt, an event that cannot be decoded (written into the events
    copy as replication would) and another receipt. Afterwards the event is removed and
    every read model rebuilt, so no row or checkpoint (stream_heads took the event's
    version and its far position) speaks of an event the copy no longer holds: a later
    test that compares a rebuild with the live rows would see those."""
    store = f"p{uuid.uuid4().hex[:10]}"
    position = POISON_POSITION + uuid.uuid4().int % 1_000_000

    def receipt(n: int) -> StreamWrite:
        received = s.StockReceived(
            store_id=store, sku="SKU", quantity=Decimal(n), occurred_at=MIDNIGHT
        )
        return StreamWrite(f"stock-{store}-SKU", [NewEvent(received, store, "SKU", MIDNIGHT)])

    asyncio.run(_append(settings, [receipt(1)]))
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO events (position, id, stream, version, type, store, sku, data,"
            " metadata, occurred_at, recorded_at)"
            " VALUES (%s, gen_random_uuid(), %s, 99, 'stock.received', %s, 'SKU',"
            " '{\"quantity\": \"lots\"}', '{}', now(), now())",
            (position, f"stock-{store}-SKU", store),
        )
    asyncio.run(_append(settings, [receipt(2)]))
    yield store, position
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM events WHERE position = %s", (position,))
        conn.execute("DELETE FROM projection_stalls WHERE partition = %s", (store,))
    names = [p.name for p in PROJECTORS]
    assert admin.rebuild(settings.replica_url, names, out=io.StringIO()) == 0


def _state(settings: Settings, store: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.replica_url) as conn:
        return {
            "stalls": conn.execute(STALL_FIELDS, (store,)).fetchall(),
            "checkpoints": conn.execute(CHECKPOINTS, (store,)).fetchall(),
            "levels": conn.execute(
                "SELECT on_hand, version, last_seq FROM stock_levels WHERE store = %s", (store,)
            ).fetchall(),
            "days": conn.execute(
                "SELECT day, type, count, quantity FROM daily_movements WHERE store = %s",
                (store,),
            ).fetchall(),
            "heads": conn.execute(
                "SELECT stream, version FROM stream_heads WHERE partition = %s", (store,)
            ).fetchall(),
        }


@pytest.mark.parametrize("workers", [1, 2])
def test_a_rebuild_stops_a_projector_at_an_event_it_cannot_take_as_the_worker_does(
    settings: Settings, poisoned: tuple[str, int], workers: int
) -> None:
    store, _ = poisoned
    with build_worker(settings) as context:
        from inventory.worker import actors

        actors.serve(context, [store])  # contained: stock and daily totals stop at it
    live = _state(settings, store)
    assert {row[0] for row in live["stalls"]} == {"stock", "daily_movements"}
    checkpoints = {name: seq for name, seq, _ in live["checkpoints"]}
    assert checkpoints["stock"] == checkpoints["daily_movements"] < checkpoints["stream_heads"]
    assert live["levels"] == [(Decimal(1), 1, checkpoints["stock"])]

    out = io.StringIO()
    names = [p.name for p in PROJECTORS]
    assert admin.rebuild(settings.replica_url, names, out=out, workers=workers) == 1

    assert _state(settings, store) == live
    printed = out.getvalue()
    assert f"projector stock stalled in store {store}" in printed
    assert "msgspec.ValidationError" in printed
    with psycopg.connect(settings.replica_url) as conn:
        left = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%__rebuild%%'")
        assert left.fetchall() == []
