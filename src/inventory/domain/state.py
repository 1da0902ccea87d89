"""The state of each kind of stream, as stored in `streams.state` (JSON by msgspec)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from inventory.domain.events import NegativeStockPolicy
from inventory.domain.streams import kind_of
from inventory.domain.window import DEFAULT_BACKDATE_DAYS

ZERO = Decimal(0)

DETAIL_LIMIT = 256
"""How many on-hand movements dated after the latest count a stock state keeps one by one."""


class StoreState(msgspec.Struct, frozen=True, kw_only=True):
    """A store: whether it is open, its negative-stock policy, and how far its books are closed."""

    exists: bool = False
    store_id: str = ""
    name: str = ""
    location: str | None = None
    timezone: str = "UTC"
    negative_stock: NegativeStockPolicy = "deny"
    closed_until: datetime | None = None
    backdate_days: int = DEFAULT_BACKDATE_DAYS  # how far back clerks and API keys may date


class ProductState(msgspec.Struct, frozen=True, kw_only=True):
    """A catalog entry: `decimals` bounds the fractional digits of its quantities."""

    exists: bool = False
    sku: str = ""
    name: str = ""
    description: str | None = None
    barcode: str | None = None
    unit: str = "each"
    decimals: int = 0
    category: str | None = None
    discontinued: bool = False


class Movement(msgspec.Struct, frozen=True, array_like=True):
    """An on-hand delta and when it occurred (stored as a two-item array to stay small)."""

    occurred_at: datetime
    delta: Decimal


class StockState(msgspec.Struct, frozen=True, kw_only=True):
    """One item at one store: quantities, reorder point and the count anchor of rule 3.

    `on_hand` is the latest count by `occurred_at` (`counted`, at `counted_at`) plus every
    delta dated after it. `after_count` keeps the newest of those deltas one by one, sorted
    by `occurred_at`, so a count dated between them keeps the later ones.
    """

    on_hand: Decimal = ZERO
    reserved: Decimal = ZERO
    in_transit_in: Decimal = ZERO
    in_transit_out: Decimal = ZERO
    reorder_min: Decimal | None = None
    reorder_max: Decimal | None = None
    counted_at: datetime | None = None
    counted: Decimal | None = None
    # Bounded: a POS SKU sees thousands of sales between counts and this state is rewritten
    # on every append, so only the newest DETAIL_LIMIT deltas stay itemised; older ones are
    # summed into `on_hand` and `settled_through` says up to when, and a count dated in that
    # settled stretch (after the latest count) is refused, never resolved approximately.
    after_count: tuple[Movement, ...] = ()
    settled_through: datetime | None = None
    # The latest `occurred_at` of any of its events: a change dated at or after it needs no
    # history to be checked (rule 4). None in states stored before it existed: unknown.
    latest_at: datetime | None = None


class SaleState(msgspec.Struct, frozen=True, kw_only=True):
    """A sale: what it sold and what has come back, per SKU."""

    exists: bool = False
    store_id: str = ""
    sale_id: str = ""
    occurred_at: datetime | None = None
    sold: dict[str, Decimal] = msgspec.field(default_factory=dict)
    returned: dict[str, Decimal] = msgspec.field(default_factory=dict)
    oversold: bool = False


TransferStatus = Literal["none", "open", "received", "cancelled"]


class TransferState(msgspec.Struct, frozen=True, kw_only=True):
    """A transfer: its stores, what left, what arrived, and whether it is still open."""

    exists: bool = False
    transfer_id: str = ""
    from_store: str = ""
    to_store: str = ""
    dispatched: dict[str, Decimal] = msgspec.field(default_factory=dict)
    received: dict[str, Decimal] = msgspec.field(default_factory=dict)
    status: TransferStatus = "none"


ReservationStatus = Literal["none", "active", "released", "expired", "fulfilled"]


class ReservationState(msgspec.Struct, frozen=True, kw_only=True):
    """A reservation: the lines it holds, until when, and whether it still holds them."""

    exists: bool = False
    store_id: str = ""
    reservation_id: str = ""
    lines: dict[str, Decimal] = msgspec.field(default_factory=dict)
    status: ReservationStatus = "none"
    expires_at: datetime | None = None
    sale_id: str | None = None


State = StoreState | ProductState | StockState | SaleState | TransferState | ReservationState

STATE_TYPES: dict[str, type[State]] = {
    "store": StoreState,
    "product": ProductState,
    "stock": StockState,
    "transfer": TransferState,
    "sale": SaleState,
    "reservation": ReservationState,
}


def state_type(stream: str) -> type[State]:
    """The state type of a stream, from its name."""
    return STATE_TYPES[kind_of(stream)]


def initial_state(stream: str) -> State:
    """The state of a stream that has no events yet."""
    return state_type(stream)()


def decode_state(stream: str, data: bytes | str | None) -> State:
    """A stream's stored state from its JSON (`None`: the stream has no events yet)."""
    if data is None:
        return initial_state(stream)
    state: State = msgspec.json.decode(data, type=state_type(stream))
    return state


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """The public quantities of one item at one store."""

    on_hand: Decimal
    reserved: Decimal
    available: Decimal
    in_transit_in: Decimal
    in_transit_out: Decimal


def level_of(state: StockState) -> Level:
    """The public level of a stock state: `available = on_hand - reserved`."""
    return Level(
        on_hand=state.on_hand,
        reserved=state.reserved,
        available=state.on_hand - state.reserved,
        in_transit_in=state.in_transit_in,
        in_transit_out=state.in_transit_out,
    )


def is_absorbed(state: StockState, occurred_at: datetime) -> bool:
    """Whether an on-hand delta dated `occurred_at` is absorbed by the latest count (rule 3)."""
    return state.counted_at is not None and occurred_at <= state.counted_at
