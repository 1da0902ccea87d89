"""A seeded generator of mixed stock commands across a few stores, run through the real
command service: late and offline events, counts, reservations and transfers."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from inventory.domain import commands as c
from inventory.domain.errors import CommandRejected
from inventory.domain.events import Line
from inventory.service import Actor, CommandService, Decision

ACTOR = Actor(id="test:history", kind="system", name="history generator", role="admin")


class _Plain:
    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, b""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, b""


@dataclass
class History:
    """What the generator made: its stores and SKUs, and how many commands it ran."""

    stores: list[str]
    skus: list[str]
    decimals: dict[str, int]
    accepted: int = 0
    rejected: int = 0
    transfers: list[str] = field(default_factory=list)
    reservations: list[tuple[str, str]] = field(default_factory=list)


class Generator:
    """Seeded: the same seed gives the same command sequence (times aside)."""

    def __init__(self, seed: int, stores: int = 3, skus: int = 6) -> None:
        self.rng = random.Random(seed)
        tag = uuid.uuid4().hex[:6]
        self.history = History(
            stores=[f"h{tag}{i}" for i in range(stores)],
            skus=[f"H{tag}-{i}" for i in range(skus)],
            decimals={},
        )
        self.open_transfers: dict[str, tuple[Line, ...]] = {}
        for index, sku in enumerate(self.history.skus):
            self.history.decimals[sku] = 2 if index == 0 else 0

    def quantity(self, sku: str, low: int = 1, high: int = 10) -> Decimal:
        """A quantity in the SKU's precision."""
        whole = Decimal(self.rng.randint(low, high))
        if self.history.decimals[sku]:
            return whole + Decimal(self.rng.randint(0, 99)) / 100
        return whole

    def when(self, now: datetime) -> datetime:
        """Mostly now; a fifth of the time up to three hours late (offline tills)."""
        if self.rng.random() < 0.2:
            return now - timedelta(minutes=self.rng.uniform(0, 180))
        return now

    def lines(self, count: int = 2) -> tuple[Line, ...]:
        """Distinct SKUs with quantities."""
        skus = self.rng.sample(self.history.skus, self.rng.randint(1, count))
        return tuple(Line(sku, self.quantity(sku, 1, 4)) for sku in skus)

    def setup(self, now: datetime) -> list[c.Command]:
        """The stores (one allowing negative stock) and the products."""
        h = self.history
        found: list[c.Command] = []
        for index, sku in enumerate(h.skus):
            barcode = f"400{index:05d}"
            found.append(
                c.RegisterProduct(
                    sku=sku,
                    name=f"Widget {sku}",
                    barcode=barcode,
                    decimals=h.decimals[sku],
                    now=now,
                )
            )
        for index, store in enumerate(h.stores):
            policy: Literal["allow", "deny"] = "allow" if index == 0 else "deny"
            found.append(c.OpenStore(store_id=store, name=store, negative_stock=policy, now=now))
        return found

    def next(self, now: datetime) -> c.Command:
        """One random command, by the weights of a busy store."""
        kinds = [
            self.receipt,
            self.sale,
            self.adjustment,
            self.count,
            self.reserve,
            self.end_reservation,
            self.dispatch,
            self.end_transfer,
            self.reorder_point,
        ]
        weights = [25, 25, 8, 8, 8, 6, 6, 8, 6]
        make = self.rng.choices(kinds, weights)[0]
        return make(self.rng.choice(self.history.stores), now) or self.receipt(
            self.history.stores[0], now
        )

    def receipt(self, store: str, now: datetime) -> c.Command:
        """A delivery, sometimes late."""
        lines = tuple(c.ReceiptLine(sku=x.sku, quantity=x.quantity * 3) for x in self.lines(3))
        return c.ReceiveStock(
            store_id=store, lines=lines, reference="po", occurred_at=self.when(now), now=now
        )

    def sale(self, store: str, now: datetime) -> c.Command:
        """A sale; offline ones (often late) are recorded whatever the stock."""
        return c.RecordSale(
            store_id=store,
            sale_id=uuid.uuid4().hex,
            lines=self.lines(),
            offline=self.rng.random() < 0.3,
            occurred_at=self.when(now),
            now=now,
        )

    def adjustment(self, store: str, now: datetime) -> c.Command:
        """A signed correction."""
        sku = self.rng.choice(self.history.skus)
        line = c.AdjustmentLine(sku=sku, delta=self.quantity(sku, -3, 3), reason="correction")
        return c.AdjustStock(store_id=store, lines=(line,), occurred_at=self.when(now), now=now)

    def count(self, store: str, now: datetime) -> c.Command:
        """A shelf count, sometimes dated earlier (it then anchors from that moment)."""
        sku = self.rng.choice(self.history.skus)
        line = c.CountLine(sku=sku, counted=self.quantity(sku, 0, 30))
        return c.CountStock(store_id=store, lines=(line,), occurred_at=self.when(now), now=now)

    def reserve(self, store: str, now: datetime) -> c.Command:
        """A hold for a customer."""
        rid = uuid.uuid4().hex
        self.history.reservations.append((store, rid))
        return c.ReserveStock(
            store_id=store, reservation_id=rid, lines=self.lines(), occurred_at=now, now=now
        )

    def end_reservation(self, _: str, now: datetime) -> c.Command | None:
        """Release or fulfil a reservation."""
        held = self.history.reservations
        if not held:
            return None
        store, rid = held.pop(self.rng.randrange(len(held)))
        if self.rng.random() < 0.5:
            return c.ReleaseReservation(
                store_id=store, reservation_id=rid, occurred_at=now, now=now
            )
        return c.FulfilReservation(
            store_id=store, reservation_id=rid, sale_id=uuid.uuid4().hex, occurred_at=now, now=now
        )

    def dispatch(self, store: str, now: datetime) -> c.Command:
        """A transfer to another store."""
        tid = uuid.uuid4().hex
        to = self.rng.choice([s for s in self.history.stores if s != store])
        self.history.transfers.append(tid)
        self.open_transfers[tid] = lines = self.lines()
        return c.DispatchTransfer(
            transfer_id=tid, from_store=store, to_store=to, lines=lines, occurred_at=now, now=now
        )

    def end_transfer(self, _: str, now: datetime) -> c.Command | None:
        """Receive a transfer in whole, or cancel it."""
        open_ = self.history.transfers
        if not open_:
            return None
        tid = open_.pop(self.rng.randrange(len(open_)))
        if self.rng.random() < 0.3:
            return c.CancelTransfer(transfer_id=tid, occurred_at=now, now=now)
        return c.ReceiveTransfer(
            transfer_id=tid, lines=self.open_transfers[tid], occurred_at=now, now=now
        )

    def reorder_point(self, store: str, now: datetime) -> c.Command:
        """A new low-stock threshold."""
        sku = self.rng.choice(self.history.skus)
        return c.SetReorderPoint(
            store_id=store,
            sku=sku,
            minimum=self.quantity(sku, 2, 12),
            maximum=Decimal(40),
            occurred_at=now,
            now=now,
        )


async def generate(primary_url: str, seed: int, commands: int) -> History:
    """Run `commands` random commands (rejections counted, not raised)."""
    gen = Generator(seed)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        primary_url, min_size=1, max_size=2, open=False
    )
    async with pool:
        service = CommandService(pool)
        for command in gen.setup(datetime.now(UTC)):
            await service.handle(command, ACTOR, _Plain())
        for _ in range(commands):
            command = gen.next(datetime.now(UTC))
            try:
                await service.handle(command, ACTOR, _Plain())
                gen.history.accepted += 1
            except CommandRejected:
                gen.history.rejected += 1
    return gen.history
