"""The stock machine (tests/stock_machine.py) through the real service on the primary: the
histories a dated change is checked against are loaded under the locks, as in production."""

from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import psycopg
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis.stateful import run_state_machine_as_test

from inventory.domain.commands import Command, OpenStore, RegisterProduct
from inventory.domain.errors import CommandRejected
from inventory.domain.events import Event, StockReceived
from inventory.domain.state import StockState, decode_state
from inventory.runtime.migrations import sql_directory
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from inventory.service import Actor, CommandService, Decision
from inventory.wiring import open_resources
from tests.stock_machine import STORES, StockMachine

EXAMPLES = int(os.environ.get("STOCK_MACHINE_SERVICE_EXAMPLES", "25"))
CLERK = Actor(id="user:clerk", kind="user", name="clerk", role="clerk", ip="127.0.0.1")


class Responder:
    """Bodies are not looked at here: the decision's events are."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, msgspec.json.encode(decision.result)

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, error.code.encode()


class ServiceDriver:
    """Fresh stores and a fresh SKU on the session's primary, driven through `handle`."""

    def __init__(self, runner: asyncio.Runner, service: CommandService) -> None:
        self.runner, self.service = runner, service
        self.now = datetime.now(UTC)
        tag = uuid.uuid4().hex[:10]
        self.sku = f"P{tag}"
        self.stores = {name: f"{name}{tag}" for name in STORES}
        for store_id in self.stores.values():
            self.run(OpenStore(store_id=store_id, name=store_id, now=self.now))
        self.run(RegisterProduct(sku=self.sku, name=self.sku, now=self.now))

    def store(self, name: str) -> str:
        return self.stores[name]

    def run(self, command: Command) -> list[Event]:
        outcome = self.runner.run(self.service.handle(command, CLERK, Responder()))
        assert outcome.decision is not None
        return list(outcome.decision.events)

    def on_hand(self, store: str) -> Decimal:
        stream = f"stock-{store}-{self.sku}"
        state = decode_state(stream, self.runner.run(self._state(stream)))
        assert isinstance(state, StockState)
        return state.on_hand

    async def _state(self, stream: str) -> str | None:
        async with self.service.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT state::text FROM streams WHERE stream = %s", (stream,)
            )
            row = await cursor.fetchone()
        return None if row is None else str(row[0])


class ServiceStockMachine(StockMachine):
    """The machine on the service; `driver_factory` is set by the test below."""


def test_no_clerk_sequence_through_the_service_raises_on_hand_above_what_came_in(
    settings: Settings,
) -> None:
    with asyncio.Runner() as runner:
        stack = AsyncExitStack()
        resources: Resources = runner.run(stack.enter_async_context(open_resources(settings)))
        try:
            runner.run(resources.primary.wait())
            service = CommandService(resources.primary)
            ServiceStockMachine.driver_factory = lambda: ServiceDriver(runner, service)
            run_state_machine_as_test(
                ServiceStockMachine,
                settings=hypothesis_settings(
                    max_examples=EXAMPLES,
                    stateful_step_count=30,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(stack.aclose())


def test_migration_0055_gives_stock_states_stored_before_it_their_latest_at(
    settings: Settings, store_id: str
) -> None:
    stream = f"stock-{store_id}-A"
    events = [
        StockReceived(store_id=store_id, sku="A", occurred_at=at, quantity=Decimal(1))
        for at in (datetime(2026, 5, 1, 9, tzinfo=UTC), datetime(2026, 4, 1, 9, tzinfo=UTC))
    ]
    old = msgspec.json.encode(StockState(on_hand=Decimal(2))).decode()
    sql = (sql_directory("migrations") / "0055_stock_latest_at.sql").read_text()
    with psycopg.connect(settings.primary_admin_url, autocommit=True) as conn:
        for version, item in enumerate(events, start=1):
            conn.execute(
                "INSERT INTO events (id, stream, version, type, store, sku, data, metadata,"
                " occurred_at) VALUES (gen_random_uuid(), %s, %s, 'stock.received', %s, 'A',"
                " %s, '{}', %s)",
                (stream, version, store_id, msgspec.json.encode(item).decode(), item.occurred_at),
            )
        conn.execute(
            "INSERT INTO streams (stream, version, state) VALUES (%s, 2, %s)", (stream, old)
        )
        conn.execute(sql)
        row = conn.execute(
            "SELECT state::text FROM streams WHERE stream = %s", (stream,)
        ).fetchone()
    assert row is not None
    state = decode_state(stream, row[0])
    assert isinstance(state, StockState)
    assert (state.on_hand, state.latest_at) == (Decimal(2), datetime(2026, 5, 1, 9, tzinfo=UTC))
