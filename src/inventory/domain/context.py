"""What a decision reads (`Context`) and what it produces (`Change`), across many streams."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar

import msgspec

from inventory.domain.availability import (
    HistoryNeed,
    HistoryNotInContext,
    StockHistory,
    history_need,
)
from inventory.domain.commands import (
    AdjustStock,
    Command,
    DispatchTransfer,
    FulfilReservation,
    RecordSale,
    ReserveStock,
)
from inventory.domain.events import Event
from inventory.domain.evolution import evolve
from inventory.domain.state import (
    ProductState,
    ReservationState,
    SaleState,
    State,
    StockState,
    StoreState,
    TransferState,
    initial_state,
)
from inventory.domain.streams import (
    product_stream,
    reservation_stream,
    sale_stream,
    stock_stream,
    store_stream,
    transfer_stream,
)

S = TypeVar("S", bound=State)


class StreamNotInContext(LookupError):
    """A decision needed a stream the caller did not lock: a bug, or a document that
    appeared between the unlocked read and the lock (retry the command)."""


class Streams(msgspec.Struct, frozen=True):
    """The streams a command appends to (lock exclusively) and those it only reads (share)."""

    write: frozenset[str]
    read: frozenset[str] = frozenset()

    @property
    def all(self) -> frozenset[str]:
        """Every stream the command touches."""
        return self.write | self.read


class Head(msgspec.Struct, frozen=True):
    """A stream's version (0: no events yet) and its state at that version."""

    version: int
    state: State


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """An event to append to `stream`, with its partition key and business time.

    `expected_version` is the client's (a count line's); `None` means the version read.
    """

    stream: str
    event: Event
    store: str | None = None
    sku: str | None = None
    occurred_at: datetime | None = None
    expected_version: int | None = None


class Context(msgspec.Struct, frozen=True):
    """The heads of every stream of a command, keyed by stream name, and the histories
    of the stock streams its dated changes are checked against (rule 4)."""

    heads: Mapping[str, Head] = msgspec.field(default_factory=dict)
    histories: Mapping[str, StockHistory] = msgspec.field(default_factory=dict)

    @classmethod
    def empty(cls, streams: Iterable[str]) -> Context:
        """A context in which none of `streams` has events yet."""
        return cls({stream: Head(0, initial_state(stream)) for stream in streams})

    def head(self, stream: str) -> Head:
        """The head of `stream`; StreamNotInContext when the caller did not provide it."""
        head = self.heads.get(stream)
        if head is None:
            raise StreamNotInContext(stream)
        return head

    def version(self, stream: str) -> int:
        """The version of `stream` (0: no events yet)."""
        return self.head(stream).version

    def state(self, stream: str, kind: type[S]) -> S:
        """The state of `stream`, which must be of type `kind`."""
        state = self.head(stream).state
        if not isinstance(state, kind):
            raise TypeError(f"{stream!r} holds a {type(state).__name__}, not a {kind.__name__}")
        return state

    def store(self, store_id: str) -> StoreState:
        """The state of `store-{store_id}`."""
        return self.state(store_stream(store_id), StoreState)

    def product(self, sku: str) -> ProductState:
        """The state of `product-{sku}`."""
        return self.state(product_stream(sku), ProductState)

    def stock(self, store_id: str, sku: str) -> StockState:
        """The state of `stock-{store_id}-{sku}`."""
        return self.state(stock_stream(store_id, sku), StockState)

    def sale(self, store_id: str, sale_id: str) -> SaleState:
        """The state of `sale-{store_id}-{sale_id}`."""
        return self.state(sale_stream(store_id, sale_id), SaleState)

    def transfer(self, transfer_id: str) -> TransferState:
        """The state of `transfer-{transfer_id}`."""
        return self.state(transfer_stream(transfer_id), TransferState)

    def reservation(self, store_id: str, reservation_id: str) -> ReservationState:
        """The state of `reservation-{store_id}-{reservation_id}`."""
        return self.state(reservation_stream(store_id, reservation_id), ReservationState)

    def history(self, stream: str, at: datetime) -> StockHistory | None:
        """The history a change of `stream` dated `at` needs (None: its state suffices);
        HistoryNotInContext when it needs one the caller did not load."""
        state = self.state(stream, StockState)
        need = history_need(stream, state, self.version(stream), at)
        if need is None:
            return None
        history = self.histories.get(stream)
        if history is None or history.need != need:
            raise HistoryNotInContext(stream)
        return history

    def history_needs(self, command: Command) -> list[HistoryNeed]:
        """The histories the decider needs to check `command`'s dated changes (rule 4)."""
        if isinstance(command, FulfilReservation):
            held = self.heads.get(reservation_stream(command.store_id, command.reservation_id))
            state = held.state if held is not None else None
            skus = list(state.lines) if isinstance(state, ReservationState) else []
        elif isinstance(command, RecordSale | ReserveStock | AdjustStock | DispatchTransfer):
            skus = [line.sku for line in command.lines]
        else:
            return []
        store = command.from_store if isinstance(command, DispatchTransfer) else command.store_id
        needs = []
        for sku in skus:
            stream = stock_stream(store, sku)
            head = self.heads.get(stream)
            if head is not None and isinstance(head.state, StockState):
                need = history_need(stream, head.state, head.version, command.occurred_at)
                if need is not None:
                    needs.append(need)
        return needs

    def advanced(self, changes: Iterable[Change]) -> Context:
        """The context after appending `changes`: each stream's state folded, version moved."""
        heads = dict(self.heads)
        for change in changes:
            head = heads.get(change.stream) or Head(0, initial_state(change.stream))
            heads[change.stream] = Head(head.version + 1, evolve(head.state, change.event))
        return Context(heads)
