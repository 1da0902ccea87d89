"""The demo's simulated POS traffic: sales, late offline sales, returns, damage, counts
and deliveries, one command at a time, weighted like a shop's day."""

from __future__ import annotations

import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from inventory.cli.demo_client import BY_SKU, PRODUCTS, STORES, Api, sample_quantity


@dataclass
class Simulation:
    """The POS traffic of the demo's stores, one command at a time."""

    api: Api
    sales: deque[tuple[str, str, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=50))
    below: set[tuple[str, str]] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    chance: random.Random = field(default_factory=random.Random)

    def step(self) -> None:
        """One command, chosen at random with the weights of a shop's day."""
        roll = self.chance.random()
        if self.below and roll < 0.08:
            self.deliver(*self.below.pop())
        elif roll < 0.12 and self.sales:
            self.give_back()
        elif roll < 0.15:
            self.damage()
        elif roll < 0.18:
            self.count()
        else:
            self.sell(offline=roll > 0.97)

    def command(self, kind: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Send a stock command; its result, or None when refused (counted by code)."""
        status, answer = self.api.call("POST", path, body, key=str(uuid.uuid4()))
        outcome = kind if status == 201 else str(answer.get("code", status))
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if status != 201:
            return None
        for level in answer.get("levels", []):
            item = (level["store"], level["sku"])
            product = BY_SKU.get(level["sku"])
            if product and Decimal(str(level["available"])) < product.reorder_min:
                self.below.add(item)
        return answer

    def sell(self, *, offline: bool) -> None:
        """A sale of one to three products at a random store."""
        store = self.chance.choice(STORES)[0]
        picked = self.chance.sample(PRODUCTS, self.chance.randint(1, 3))
        lines = [
            {"sku": p.sku, "quantity": sample_quantity(self.chance, p.decimals, 1, 3)}
            for p in picked
        ]
        body: dict[str, Any] = {"sale_id": uuid.uuid4().hex[:16], "lines": lines}
        if offline:
            late = timedelta(minutes=self.chance.randint(2, 30))
            body |= {"offline": True, "occurred_at": (datetime.now(UTC) - late).isoformat()}
        if self.command("sale", f"/v1/stores/{store}/sales", body) is not None:
            self.sales.append((store, body["sale_id"], lines[0]))
        else:  # short: the shelf is restocked by the next delivery
            self.below.update((store, line["sku"]) for line in lines)

    def give_back(self) -> None:
        """A customer returns one line of a recent sale."""
        store, sale_id, line = self.sales.popleft()
        body = {"sale_id": sale_id, "lines": [line], "restock": True}
        self.command("return", f"/v1/stores/{store}/returns", body)

    def damage(self) -> None:
        """One unit found damaged or expired."""
        store = self.chance.choice(STORES)[0]
        sku = self.chance.choice(PRODUCTS).sku
        reason = self.chance.choice(("damaged", "expired"))
        body = {"lines": [{"sku": sku, "delta": -1, "reason": reason}]}
        self.command("adjustment", f"/v1/stores/{store}/adjustments", body)

    def count(self) -> None:
        """A shelf count that finds what the system expects, or one unit off."""
        store = self.chance.choice(STORES)[0]
        product = self.chance.choice([p for p in PRODUCTS if p.decimals == 0])
        status, level = self.api.call("GET", f"/v1/stores/{store}/stock/{product.sku}")
        if status != 200:
            return
        off = self.chance.choice((0, 0, 0, -1))
        counted = max(int(Decimal(str(level["on_hand"]))) + off, 0)
        body = {"lines": [{"sku": product.sku, "counted": counted}]}
        self.command("count", f"/v1/stores/{store}/counts", body)

    def deliver(self, store: str, sku: str) -> None:
        """A delivery that fills the item up to about its reorder maximum."""
        product = BY_SKU[sku]
        quantity = sample_quantity(
            self.chance, product.decimals, product.reorder_max // 2, product.reorder_max
        )
        body = {"lines": [{"sku": sku, "quantity": quantity}], "reference": "delivery"}
        self.command("delivery", f"/v1/stores/{store}/receipts", body)
