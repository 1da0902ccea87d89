"""`available` as of a business time (rule 4): what a dated stock change is checked against.

A change dated T lowers `available` at T and at every later time up to the first count
dated at or after T (rule 3: that count absorbs it), or up to now when no count follows.
`available` at a time t is `on_hand` as of t (the latest count at or before t plus the
deltas dated after it up to t) minus `reserved` as of t: the holds known now whose events
are dated at or before t (`reserved` now less every hold event dated after t), never below
zero. Everything known now counts, whenever it was recorded.

The stock state keeps no history before its latest count, so a change dated before a
later event needs the stream's events from the primary (`StockHistory`), loaded under the
stream's lock in the command's transaction: `history_need` says which, and the decider
refuses to guess without them (`HistoryNotInContext`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import msgspec

from inventory.domain.events import StockCounted, StockEvent
from inventory.domain.state import ZERO, StockState, level_of
from inventory.domain.stock_evolution import evolve_stock


class HistoryNeed(msgspec.Struct, frozen=True):
    """The events of `stream` a change dated `at` is checked against.

    `from_count`: every event dated at or after the latest count dated at or before `at`
    (all of them when there is none); otherwise every event dated after `at`.
    """

    stream: str
    at: datetime
    from_count: bool


class StockHistory(msgspec.Struct, frozen=True):
    """The events a `HistoryNeed` names, in business-time order (`occurred_at`, version)."""

    need: HistoryNeed
    events: tuple[StockEvent, ...]


class HistoryNotInContext(LookupError):
    """A dated change needed its stream's history and the caller did not load it (a bug)."""


class Shortfall(msgspec.Struct, frozen=True):
    """How far a change takes `available` below zero, and when (None: now)."""

    available: Decimal
    requested: Decimal
    at: datetime | None

    @property
    def missing(self) -> Decimal:
        """The part of the change that `available` did not cover."""
        return min(self.requested, self.requested - self.available)


def history_need(stream: str, state: StockState, version: int, at: datetime) -> HistoryNeed | None:
    """What history a change dated `at` needs beyond the state (None: the state suffices).

    The state suffices when nothing is dated after `at` and no count absorbs it;
    `latest_at` is unknown (None) in states stored before it existed: those load it.
    """
    if version == 0 or at.utcoffset() is None:
        return None  # nothing to look back on, or a time the decider refuses anyway
    if state.counted_at is not None and at <= state.counted_at:
        return HistoryNeed(stream, at, from_count=True)
    if state.latest_at is not None and at >= state.latest_at:
        return None
    return HistoryNeed(stream, at, from_count=False)


def history_of(need: HistoryNeed, events: Sequence[StockEvent]) -> StockHistory:
    """The history `need` names out of a stream's events in version order (what the
    service's query selects, for tests and tools that hold the events themselves)."""
    ordered = sorted(enumerate(events), key=lambda item: (item[1].occurred_at, item[0]))
    if need.from_count:
        counts = [e.occurred_at for e in events if isinstance(e, StockCounted)]
        since = max((t for t in counts if t <= need.at), default=None)
        kept = [e for _, e in ordered if since is None or e.occurred_at >= since]
    else:
        kept = [e for _, e in ordered if e.occurred_at > need.at]
    return StockHistory(need, tuple(kept))


def effect(event: StockEvent) -> tuple[Decimal, Decimal]:
    """(on_hand, reserved) that `event` adds when no count absorbs it (counts add nothing)."""
    if isinstance(event, StockCounted):
        return ZERO, ZERO
    level = level_of(evolve_stock(StockState(), event))
    return level.on_hand, level.reserved


Point = tuple[datetime | None, Decimal, Decimal]
"""A time (None: now), `on_hand` as of it, and `reserved` as of it before the floor at 0."""


def series(
    state: StockState, history: StockHistory | None, extra: Sequence[StockEvent] = ()
) -> list[Point]:
    """The history's time and each later time an event is dated at, with `on_hand` and
    `reserved` as of it; `extra` (dated at the history's time) folded in after what is
    already there, and at that time itself as if no count absorbed it."""
    if history is None:
        return []
    at, events = history.need.at, history.events
    if history.need.from_count:
        on_hand = StockState()
    else:
        # Nothing dated after `at` is a count (the latest count is dated before it).
        on_hand = StockState(on_hand=state.on_hand - sum((effect(e)[0] for e in events), ZERO))
    # The holds dated after the point reached so far: `reserved` now less those.
    held_later = sum((effect(e)[1] for e in events if e.occurred_at > at), ZERO)
    own_on_hand = sum((effect(e)[0] for e in extra), ZERO)
    own_held = sum((effect(e)[1] for e in extra), ZERO)
    points: list[Point] = []
    position = 0
    for time in sorted({at, *(e.occurred_at for e in events if e.occurred_at > at)}):
        while position < len(events) and events[position].occurred_at <= time:
            event = events[position]
            on_hand = evolve_stock(on_hand, event)
            if event.occurred_at > at:
                held_later -= effect(event)[1]
            position += 1
        quantity = on_hand.on_hand
        if time == at:
            # At its own time a change is checked even when a count dated then absorbs it.
            quantity += own_on_hand
            for event in extra:
                on_hand = evolve_stock(on_hand, event)
        points.append((time, quantity, state.reserved - held_later + own_held))
    return points


def shortfall(
    state: StockState, history: StockHistory | None, changes: Sequence[StockEvent]
) -> Shortfall | None:
    """The worst point where `changes` (dated at the history's time, or now without one)
    lower `available` below zero, or `on_hand` (a fulfilment, which `available` does not
    show), or None when they never do."""
    after_state = state
    for event in changes:
        after_state = evolve_stock(after_state, event)
    now: Point = (None, state.on_hand, state.reserved)
    pairs: list[tuple[Point, Point]] = [(now, (None, after_state.on_hand, after_state.reserved))]
    pairs += zip(series(state, history), series(state, history, changes), strict=True)
    short = []
    for (when, had, held), (_, has, holds) in pairs:
        was, became = had - max(ZERO, held), has - max(ZERO, holds)
        if became < 0 and became < was:
            short.append(Shortfall(was, was - became, when))
        elif has < 0 and has < had:
            short.append(Shortfall(had, had - has, when))
    # The lowest `available` after the change; the first (now) among equals.
    return min(short, key=lambda item: item.available - item.requested, default=None)
