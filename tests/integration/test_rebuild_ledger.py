"""The stock ledger a rebuild writes by SQL (`readmodels/ledger_sql.py`) is the live
projector's and the Python fold's, row for row as text (numeric scales included), with
the levels and alerts folded beside it: every movement type, backdated events before and
after others, counts that anchor, are ignored, tie or fall in the settled stretch, an item
whose columns are not its event's, actors of every shape, period closes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from inventory.domain import stock_events as s
from inventory.domain.events import StorePeriodClosed
from inventory.domain.state import DETAIL_LIMIT
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.projectors.engine import project
from inventory.projectors.rebuild import rebuild
from inventory.readmodels.registry import by_name
from inventory.runtime.settings import Settings
from tests.integration.test_rebuild_sql import _movements
from tests.projection_helpers import stock_store, wait_replicated

T0 = datetime(2026, 5, 4, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
ACTORS: list[Any] = [
    {"actor": {"id": "user-1", "kind": "user"}},
    {"actor": {"id": 7}},
    {"actor": "nobody"},
    {"actor": None},
    {},
]
TABLES = {
    "ledger": "SELECT l::text FROM stock_ledger AS l WHERE store = ANY(%s) ORDER BY seq",
    "levels": "SELECT l::text FROM stock_levels AS l WHERE store = ANY(%s) ORDER BY store, sku",
    "alerts": "SELECT store, sku, kind, opened_seq, opened_at, closed_seq, closed_at,"
    " details::text FROM alerts WHERE store = ANY(%s) ORDER BY store, sku, kind, opened_seq",
}


def _common(store: str, sku: str, at: datetime) -> dict[str, Any]:
    return {"store_id": store, "sku": sku, "occurred_at": at}


def _counted_item(store: str) -> list[Any]:
    """Every movement type twice, backdated moves and counts of every kind."""
    c = _common
    return [
        *_movements(store, "A", T0),
        s.StockReceived(quantity=Decimal("3.5"), **c(store, "A", T0 - 24 * HOUR)),  # absorbed
        s.StockCounted(counted=Decimal(1), **c(store, "A", T0 - 48 * HOUR)),  # ignored
        s.StockReceived(quantity=Decimal("4.75"), **c(store, "A", T0 + 2 * HOUR)),
        s.StockSold(quantity=Decimal(1), sale_id="a", **c(store, "A", T0 + 3 * HOUR)),
        s.StockCounted(counted=Decimal("9.0"), **c(store, "A", T0 + HOUR)),  # backdated anchor
        s.StockSold(quantity=Decimal("0.25"), sale_id="b", **c(store, "A", T0 + HOUR / 2)),
        s.StockReturned(
            quantity=Decimal(2), sale_id="b", restock=False, **c(store, "A", T0 + 4 * HOUR)
        ),
        *_movements(store, "A", T0 + 5 * HOUR),
        s.StockCounted(counted=Decimal(12), **c(store, "A", T0 + 5 * HOUR)),  # a tie: the fold's
        s.StockAdjusted(delta=Decimal("-1.5"), reason="lost", **c(store, "A", T0 + 6 * HOUR)),
        s.StockCounted(counted=Decimal(3), **c(store, "B", T0 + 6 * HOUR)),
        s.StockReceived(quantity=Decimal("0.00"), **c(store, "B", T0 + 7 * HOUR)),
        s.StockReceived(quantity=Decimal(2), **c(store, "B", T0 + 5 * HOUR)),  # absorbed
        s.StockCounted(counted=Decimal(5), **c(store, "B", T0 + 5 * HOUR)),  # ignored
        s.StockReceived(quantity=Decimal(2), **c(store, "B", T0 + 8 * HOUR)),
        s.StockCounted(counted=Decimal(4), **c(store, "B", T0 + 7 * HOUR + HOUR / 2)),  # anchor
    ]


def _uncounted(store: str) -> list[Any]:
    """Backdated moves without a count; reservations and transfers only."""
    c = _common
    return [
        s.StockReceived(quantity=Decimal(5), **c(store, "C", T0)),
        s.StockSold(quantity=Decimal("1.5"), sale_id="x", **c(store, "C", T0 - HOUR)),
        s.StockReserved(quantity=Decimal(2), reservation_id="r", **c(store, "D", T0)),
        s.StockReservationFulfilled(
            quantity=Decimal(2), reservation_id="r", sale_id="y", **c(store, "D", T0 - HOUR)
        ),
        s.StockTransferIncoming(
            quantity=Decimal(3), transfer_id="t", from_store="o", **c(store, "E", T0)
        ),
        s.StockTransferReceived(
            quantity=Decimal(3), transfer_id="t", from_store="o", **c(store, "E", T0 + HOUR)
        ),
        s.StockReorderPointSet(minimum=Decimal(10), **c(store, "C", T0 + HOUR)),
    ]


def _settled(store: str) -> list[Any]:
    """More moves after a count than the state itemises, then a count dated among the
    settled ones (the decider refuses it; the fold takes it as the facts say)."""
    c = _common
    moves = [
        s.StockReceived(quantity=Decimal("0.1"), **c(store, "F", T0 + n * timedelta(minutes=1)))
        for n in range(DETAIL_LIMIT + 20)
    ]
    return [
        s.StockCounted(counted=Decimal(100), **c(store, "F", T0 - HOUR)),
        *moves,
        s.StockCounted(counted=Decimal(50), **c(store, "F", T0 + 5 * timedelta(minutes=1))),
        s.StockSold(
            quantity=Decimal(1), sale_id="z", **c(store, "F", T0 + 500 * timedelta(minutes=1))
        ),
    ]


def _writes(stores: list[str]) -> list[tuple[StreamWrite, Any]]:
    first, second, third = stores
    plan: list[tuple[StreamWrite, Any]] = []

    def add(events: list[Any], at: datetime | None = None, sku: str | None = None) -> None:
        for n, e in enumerate(events):
            new = NewEvent(e, e.store_id, sku or e.sku, at or e.occurred_at)
            plan.append(
                (StreamWrite(f"stock-{e.store_id}-{e.sku}", [new]), ACTORS[n % len(ACTORS)])
            )

    add(_counted_item(first))
    closed = StorePeriodClosed(store_id=first, until=T0 + 5 * HOUR, occurred_at=T0)
    plan.append((StreamWrite(f"store-{first}", [NewEvent(closed, first)]), {}))
    add(_uncounted(second))
    add(_settled(third))
    # Columns that are not the event's: a later business time, another SKU.
    add([s.StockReceived(quantity=Decimal(1), **_common(second, "C", T0 + 9 * HOUR))], at=T0)
    add([s.StockReceived(quantity=Decimal(1), **_common(second, "G", T0))], sku="C")
    add([s.StockSold(quantity=Decimal(1), sale_id="w", **_common(second, "C", T0 + 10 * HOUR))])
    return plan


async def _append(settings: Settings, plan: list[tuple[StreamWrite, Any]]) -> None:
    positions: list[int] = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url) as conn:
        for write, metadata in plan:  # one commit each: seq order is the plan's order
            positions += [r.position for r in await stock_store.append(conn, [write], metadata)]
            await conn.commit()
    wait_replicated(settings.replica_url, positions)


def _rows(settings: Settings, stores: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.replica_url) as conn:
        return {name: conn.execute(q, (stores,)).fetchall() for name, q in TABLES.items()}


@pytest.fixture(scope="module")
async def made(settings: Settings) -> tuple[list[str], dict[str, list[tuple[Any, ...]]]]:
    """The stores, and the live projector's rows (each rebuild is compared with them)."""
    tag = uuid.uuid4().hex[:6]
    stores = [f"l{tag}{n}" for n in range(3)]
    await _append(settings, _writes(stores))
    with ConnectionPool(settings.replica_url, min_size=1, max_size=1, open=True) as pool:
        for partition in sorted(stores):
            project(pool, by_name("stock"), partition)
    return stores, _rows(settings, stores)


def test_the_history_has_what_the_sql_must_get_right(
    made: tuple[list[str], dict[str, list[tuple[Any, ...]]]],
) -> None:
    stores, live = made
    ledger = [row[0] for row in live["ledger"]]
    assert len(ledger) == len(_writes(stores)) - 1  # every stock event, not the period close
    assert any(",t)" in row for row in ledger)  # absorbed rows
    assert any("user-1" in row for row in ledger)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("set_based", [True, False])
def test_a_rebuild_gives_the_live_ledger_levels_and_alerts(
    settings: Settings,
    made: tuple[list[str], dict[str, list[tuple[Any, ...]]]],
    workers: int,
    set_based: bool,
) -> None:
    stores, live = made

    stock = [by_name("stock")]
    rebuild(settings.replica_url, stock, lambda _: None, workers=workers, set_based=set_based)

    assert _rows(settings, stores) == live
