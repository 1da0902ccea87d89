"""The stock machine (tests/stock_machine.py) against the pure decider, as the service folds."""

from __future__ import annotations

import os
from datetime import datetime
from decimal import Decimal

from hypothesis import HealthCheck, settings

from inventory.domain.commands import Command
from inventory.domain.events import Event
from tests.stock_machine import STORES, StockMachine
from tests.unit.domain.scenario import NOW, Scenario, product, store

EXAMPLES = int(os.environ.get("STOCK_MACHINE_EXAMPLES", "300"))


class PureDriver:
    """The decider with the histories the service would load, on events kept in memory."""

    sku = "P"
    now: datetime = NOW

    def __init__(self) -> None:
        self.scenario = Scenario(*(store(name) for name in STORES), product(self.sku))

    def store(self, name: str) -> str:
        return name

    def run(self, command: Command) -> list[Event]:
        return self.scenario.when(command)

    def on_hand(self, store: str) -> Decimal:
        return self.scenario.level(store, self.sku).on_hand


class PureStockMachine(StockMachine):
    """The machine on the pure decider."""

    driver_factory = PureDriver


PureStockMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_no_clerk_sequence_raises_on_hand_above_what_really_came_in = PureStockMachine.TestCase
