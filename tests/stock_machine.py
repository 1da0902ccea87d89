"""A clerk's every stock command at random business times, against a model of physical stock.

Rule 4: no sequence of a clerk's commands raises `on_hand` above what receipts, counts,
found-adjustments, transfers in and returns of quantities really sold put there. The model
keeps every accepted on-hand fact per store with its business time and computes, by its
own fold of rule 3 (not the domain's `evolve`), `on_hand` as of any time. A sale (or a
dispatch, a decrease, a fulfilment) "really" takes what `on_hand` held at every time its
delta applies: at its own time, and later until a count dated at or after it absorbs it,
or now. The machine runs against any `Driver`: the pure decider, or the real service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from inventory.domain.authority import Authority
from inventory.domain.commands import (
    AdjustmentLine,
    AdjustStock,
    CancelTransfer,
    Command,
    CountLine,
    CountStock,
    DispatchTransfer,
    FulfilReservation,
    ReceiptLine,
    ReceiveStock,
    ReceiveTransfer,
    RecordReturn,
    RecordSale,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.errors import CommandRejected
from inventory.domain.events import (
    Event,
    Line,
    StockAdjusted,
    StockCounted,
    StockFact,
    StockReceived,
    StockReservationFulfilled,
    StockReturned,
    StockSold,
    StockTransferCancelled,
    StockTransferDispatched,
    StockTransferReceived,
)
from tests.stock_model import ZERO, Fact, Shelf, Sold

STORES = ("a", "b")
CLERK = Authority(role="clerk", api_key=True)


class Driver(Protocol):
    """Runs commands on one system: the pure decider or the service on the primary."""

    now: datetime
    sku: str

    def store(self, name: str) -> str:
        """The store id the system knows store `name` ("a" or "b") by."""

    def run(self, command: Command) -> list[Event]:
        """The events of an accepted command; raises CommandRejected."""

    def on_hand(self, store: str) -> Decimal:
        """The system's `on_hand` of the SKU at `store` now."""


class StockMachine(RuleBasedStateMachine):
    """Random clerk commands; after each, `on_hand` matches the model and stays in bound."""

    driver_factory: Callable[[], Driver]

    def __init__(self) -> None:
        super().__init__()
        self.driver = type(self).driver_factory()
        self.shelves = {name: Shelf() for name in STORES}
        self.seq = 0
        self.sales: list[Sold] = []
        self.honest_returns: dict[int, Decimal] = {}
        self.reservations: list[tuple[str, str]] = []
        self.transfers: list[str] = []
        self.ids = 0

    def new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}-{self.ids}"

    def when(self, minutes: int) -> datetime:
        return self.driver.now + timedelta(minutes=minutes)

    def lines(self, quantity: int) -> tuple[Line, ...]:
        return (Line(self.driver.sku, Decimal(quantity)),)

    def attempt(self, command: Command) -> list[Event] | None:
        note(repr(command))
        try:
            events = self.driver.run(command)
        except CommandRejected as refused:
            event(f"{type(command).__name__} refused: {refused.code}")
            return None
        event(f"{type(command).__name__} accepted")
        return events

    def record(self, events: Sequence[Event], honest: Decimal | None = None) -> None:
        """Add the on-hand facts of accepted events to the model; a return counts as a
        source only for the `honest` part of it (what its sale really took)."""
        for item in events:
            if not isinstance(item, StockFact):
                continue
            fact = self.fact_of(item)
            if fact is None:
                continue
            store = next(n for n in STORES if self.driver.store(n) == item.store_id)
            self.shelves[store].facts.append(fact)
            if isinstance(item, StockReturned) and honest is not None:
                self.honest_returns[fact.seq] = min(fact.delta, honest)

    def fact_of(self, item: StockFact) -> Fact | None:
        self.seq += 1
        match item:
            case StockCounted():
                return Fact(item.occurred_at, self.seq, count=item.counted)
            case StockReceived() | StockTransferReceived() | StockTransferCancelled():
                return Fact(item.occurred_at, self.seq, item.quantity, inflow=True)
            case StockReturned():
                quantity = item.quantity if item.restock else ZERO
                return Fact(item.occurred_at, self.seq, quantity, inflow=item.restock)
            case StockAdjusted():
                return Fact(item.occurred_at, self.seq, item.delta, inflow=item.delta > 0)
            case StockSold() | StockReservationFulfilled() | StockTransferDispatched():
                return Fact(item.occurred_at, self.seq, -item.quantity)
            case _:
                return None

    def check_covered(self, store: str, quantity: int, minutes: int) -> Decimal:
        """The model's cover of a decrease, before it is recorded."""
        return self.shelves[store].covered(Decimal(quantity), self.when(minutes))

    # --- receipts, counts, adjustments -------------------------------------------------

    @rule(store=st.sampled_from(STORES), quantity=st.integers(1, 12), minutes=st.integers(-96, 0))
    def receive(self, store: str, quantity: int, minutes: int) -> None:
        receipt = (ReceiptLine(sku=self.driver.sku, quantity=Decimal(quantity)),)
        command = ReceiveStock(
            store_id=self.driver.store(store),
            lines=receipt,
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        self.record(self.attempt(command) or [])

    @rule(store=st.sampled_from(STORES), counted=st.integers(0, 15), minutes=st.integers(-96, 0))
    def count(self, store: str, counted: int, minutes: int) -> None:
        command = CountStock(
            store_id=self.driver.store(store),
            lines=(CountLine(sku=self.driver.sku, counted=Decimal(counted)),),
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        self.record(self.attempt(command) or [])

    @rule(
        store=st.sampled_from(STORES),
        delta=st.one_of(st.integers(-12, -1), st.integers(1, 12)),
        minutes=st.integers(-96, 0),
    )
    def adjust(self, store: str, delta: int, minutes: int) -> None:
        covered = self.check_covered(store, -delta, minutes * 30) if delta < 0 else ZERO
        line = AdjustmentLine(
            sku=self.driver.sku, delta=Decimal(delta), reason="found" if delta > 0 else "damaged"
        )
        command = AdjustStock(
            store_id=self.driver.store(store),
            lines=(line,),
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        events = self.attempt(command)
        if events is not None and delta < 0:
            assert covered == -delta, f"a decrease of {-delta} was accepted, {covered} there"
        self.record(events or [])

    # --- sales and returns -------------------------------------------------------------

    @rule(
        store=st.sampled_from(STORES),
        quantity=st.integers(1, 12),
        minutes=st.integers(-96, 0),
        offline=st.booleans(),
    )
    def sell(self, store: str, quantity: int, minutes: int, offline: bool) -> None:
        covered = self.check_covered(store, quantity, minutes * 30)
        sale_id = self.new_id("sale")
        command = RecordSale(
            store_id=self.driver.store(store),
            sale_id=sale_id,
            lines=self.lines(quantity),
            offline=offline,
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        events = self.attempt(command)
        if events is None:
            return
        sold = next(e for e in events if isinstance(e, StockSold))
        if not offline or sold.shortfall == 0:
            assert covered == quantity, f"a sale of {quantity} was accepted, {covered} there"
        self.sales.append(Sold(store, sale_id, Decimal(quantity), covered))
        self.record(events)

    @precondition(lambda self: self.sales)
    @rule(
        data=st.data(),
        quantity=st.integers(1, 12),
        minutes=st.integers(-96, 0),
        restock=st.booleans(),
    )
    def give_back(self, data: st.DataObject, quantity: int, minutes: int, restock: bool) -> None:
        sale = data.draw(st.sampled_from(self.sales))
        command = RecordReturn(
            store_id=self.driver.store(sale.store),
            sale_id=sale.sale_id,
            lines=self.lines(quantity),
            restock=restock,
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
            authority=CLERK,
        )
        events = self.attempt(command)
        if events is None:
            return
        honest = max(ZERO, min(Decimal(quantity), sale.covered - sale.returned))
        sale.returned += quantity
        assert sale.returned <= sale.covered, (
            f"a clerk returned {sale.returned} of sale {sale.sale_id}; {sale.covered} was there"
        )
        self.record(events, honest)

    # --- reservations ------------------------------------------------------------------

    @rule(store=st.sampled_from(STORES), quantity=st.integers(1, 12), minutes=st.integers(-96, 0))
    def reserve(self, store: str, quantity: int, minutes: int) -> None:
        reservation_id = self.new_id("hold")
        command = ReserveStock(
            store_id=self.driver.store(store),
            reservation_id=reservation_id,
            lines=self.lines(quantity),
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        if self.attempt(command) is not None:
            self.reservations.append((store, reservation_id))

    @precondition(lambda self: self.reservations)
    @rule(data=st.data(), minutes=st.integers(-96, 0), fulfil=st.booleans())
    def end_hold(self, data: st.DataObject, minutes: int, fulfil: bool) -> None:
        store, reservation_id = data.draw(st.sampled_from(self.reservations))
        at = self.when(minutes * 30)
        if not fulfil:
            release = ReleaseReservation(
                store_id=self.driver.store(store),
                reservation_id=reservation_id,
                occurred_at=at,
                now=self.driver.now,
            )
            self.attempt(release)
            return
        sale_id = self.new_id("sale")
        command = FulfilReservation(
            store_id=self.driver.store(store),
            reservation_id=reservation_id,
            sale_id=sale_id,
            occurred_at=at,
            now=self.driver.now,
        )
        events = self.attempt(command)
        if events is None:
            return
        taken = next(e for e in events if isinstance(e, StockReservationFulfilled))
        covered = self.shelves[store].covered(taken.quantity, at)
        assert covered == taken.quantity, f"a fulfilment of {taken.quantity}: {covered} there"
        self.sales.append(Sold(store, sale_id, taken.quantity, covered))
        self.record(events)

    # --- transfers ---------------------------------------------------------------------

    @rule(source=st.sampled_from(STORES), quantity=st.integers(1, 12), minutes=st.integers(-96, 0))
    def dispatch(self, source: str, quantity: int, minutes: int) -> None:
        covered = self.check_covered(source, quantity, minutes * 30)
        transfer_id = self.new_id(f"transfer-{self.driver.store(source)}")
        destination = next(name for name in STORES if name != source)
        command = DispatchTransfer(
            transfer_id=transfer_id,
            from_store=self.driver.store(source),
            to_store=self.driver.store(destination),
            lines=self.lines(quantity),
            occurred_at=self.when(minutes * 30),
            now=self.driver.now,
        )
        events = self.attempt(command)
        if events is None:
            return
        assert covered == quantity, f"a dispatch of {quantity} was accepted, {covered} there"
        self.transfers.append(transfer_id)
        self.record(events)

    @precondition(lambda self: self.transfers)
    @rule(
        data=st.data(),
        quantity=st.integers(1, 12),
        minutes=st.integers(-96, 0),
        cancel=st.booleans(),
    )
    def end_transfer(self, data: st.DataObject, quantity: int, minutes: int, cancel: bool) -> None:
        transfer_id = data.draw(st.sampled_from(self.transfers))
        at = self.when(minutes * 30)
        command: Command
        if cancel:
            command = CancelTransfer(transfer_id=transfer_id, occurred_at=at, now=self.driver.now)
        else:
            command = ReceiveTransfer(
                transfer_id=transfer_id,
                lines=self.lines(quantity),
                occurred_at=at,
                now=self.driver.now,
            )
        self.record(self.attempt(command) or [])

    # --- what must always hold ---------------------------------------------------------

    @invariant()
    def on_hand_never_exceeds_what_really_came_in(self) -> None:
        for name, shelf in self.shelves.items():
            on_hand = self.driver.on_hand(self.driver.store(name))
            assert on_hand == shelf.on_hand(), f"{name}: system {on_hand}, model {shelf.on_hand()}"
            bound = shelf.bound(lambda f: self.honest_returns.get(f.seq, f.delta))
            assert on_hand <= bound, f"{name}: on_hand {on_hand} above what came in, {bound}"
