"""Rules that must hold in any order of arrival (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from unittest.mock import patch

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.domain import stock_evolution
from inventory.domain.commands import (
    CancelTransfer,
    Command,
    CountStock,
    DispatchTransfer,
    FulfilReservation,
    ReceiveTransfer,
    ReleaseReservation,
    ReserveStock,
)
from inventory.domain.decider import fold
from inventory.domain.errors import CommandRejected, ValidationRejected
from inventory.domain.events import (
    StockAdjusted,
    StockCounted,
    StockEvent,
    StockReceived,
    StockSold,
)
from inventory.domain.state import StockState, decode_state, level_of
from tests.unit.domain.scenario import (
    NOW,
    Scenario,
    adjust,
    at,
    count,
    lines,
    product,
    receive,
    sell,
    store,
)

KINDS = ("received", "sold", "adjusted", "counted")
SKUS = ("A", "B")

movements = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(min_value=-30, max_value=0),
        st.integers(min_value=1, max_value=20),
        st.booleans(),
    ),
    max_size=40,
)


def as_event(kind: str, minute: int, quantity: int, sign: bool) -> StockEvent:
    """One stock fact about A in s1."""
    amount, occurred_at = Decimal(quantity), at(minute)
    if kind == "received":
        return StockReceived(store_id="s1", sku="A", occurred_at=occurred_at, quantity=amount)
    if kind == "sold":
        return StockSold(
            store_id="s1", sku="A", occurred_at=occurred_at, quantity=amount, sale_id="x"
        )
    if kind == "adjusted":
        delta = amount if sign else -amount
        return StockAdjusted(
            store_id="s1", sku="A", occurred_at=occurred_at, delta=delta, reason="other"
        )
    return StockCounted(store_id="s1", sku="A", occurred_at=occurred_at, counted=amount)


def rule_three(arrivals: list[tuple[str, int, int, bool]]) -> Decimal:
    """on_hand by rule 3, computed from scratch: the latest count by occurred_at (the later
    arrival on a tie) plus every delta dated strictly after it."""
    deltas = [
        (minute, -quantity if kind == "sold" or (kind == "adjusted" and not sign) else quantity)
        for kind, minute, quantity, sign in arrivals
        if kind != "counted"
    ]
    counts = [
        (minute, index, quantity)
        for index, (kind, minute, quantity, _) in enumerate(arrivals)
        if kind == "counted"
    ]
    if not counts:
        return Decimal(sum(delta for _, delta in deltas))
    anchor, _, counted = max(counts)
    return Decimal(counted + sum(delta for minute, delta in deltas if minute > anchor))


@settings(max_examples=300, deadline=None)
@given(movements)
def test_on_hand_follows_the_count_anchor_in_any_order_of_arrival(
    arrivals: list[tuple[str, int, int, bool]],
) -> None:
    state = fold(StockState(), [as_event(*arrival) for arrival in arrivals])
    assert state.on_hand == rule_three(arrivals)


@settings(max_examples=150, deadline=None)
@given(movements)
def test_commands_in_an_allowing_store_keep_rule_three(
    arrivals: list[tuple[str, int, int, bool]],
) -> None:
    scenario = Scenario(store("s1", negative_stock="allow"), product("A"))
    for index, (kind, minute, quantity, sign) in enumerate(arrivals):
        scenario.when(command_for(index, kind, minute, quantity, sign))
    assert scenario.level("s1", "A").on_hand == rule_three(arrivals)


def command_for(index: int, kind: str, minute: int, quantity: int, sign: bool) -> Command:
    """The command that records one movement of A in s1."""
    if kind == "received":
        return receive(("A", quantity), minutes=minute)
    if kind == "sold":
        return sell(f"s-{index}", ("A", quantity), minutes=minute)
    if kind == "adjusted":
        return adjust("A", quantity if sign else -quantity, minutes=minute)
    return count(("A", quantity), minutes=minute)


def deny_command(index: int, choice: int, sku: str, quantity: int, minute: int) -> Command:
    """One of the commands that may take stock from s1 (or give it back)."""
    reservation, transfer = f"r-{index % 3}", f"t-{index % 3}"
    options: list[Command] = [
        receive((sku, quantity), minutes=minute),
        sell(f"s-{index}", (sku, quantity), minutes=minute),
        adjust(sku, -quantity, minutes=minute),
        count((sku, quantity), minutes=minute),
        ReserveStock(
            store_id="s1",
            reservation_id=reservation,
            lines=lines((sku, quantity)),
            occurred_at=at(minute),
            now=NOW,
        ),
        ReleaseReservation(store_id="s1", reservation_id=reservation, occurred_at=NOW, now=NOW),
        FulfilReservation(
            store_id="s1",
            reservation_id=reservation,
            sale_id=f"f-{index}",
            occurred_at=at(minute),
            now=NOW,
        ),
        DispatchTransfer(
            transfer_id=transfer,
            from_store="s1",
            to_store="s2",
            lines=lines((sku, quantity)),
            occurred_at=at(minute),
            now=NOW,
        ),
        ReceiveTransfer(
            transfer_id=transfer, lines=lines((sku, quantity)), occurred_at=at(minute), now=NOW
        ),
        CancelTransfer(transfer_id=transfer, occurred_at=at(minute), now=NOW),
    ]
    return options[choice % len(options)]


steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=9),
        st.sampled_from(SKUS),
        st.integers(min_value=1, max_value=6),
        st.integers(min_value=-60, max_value=0),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_under_deny_no_command_but_a_count_makes_available_negative(
    plan: list[tuple[int, str, int, int]],
) -> None:
    scenario = Scenario(store("s1"), store("s2"), *(product(sku) for sku in SKUS))
    counted = False
    for index, (choice, sku, quantity, minute) in enumerate(plan):
        command = deny_command(index, choice, sku, quantity, minute)
        before = {item: scenario.level("s1", item).available for item in SKUS}
        try:
            changes = scenario.decide(command)
        except CommandRejected:
            continue
        stored_then_folded = {
            change.stream: fold(
                decode_state(
                    change.stream, msgspec.json.encode(scenario.head(change.stream).state)
                ),
                [other.event for other in changes if other.stream == change.stream],
            )
            for change in changes
        }
        scenario.when(command)
        counted = counted or isinstance(command, CountStock)
        for item in SKUS:
            available = scenario.level("s1", item).available
            assert available >= 0 or isinstance(command, CountStock) or available >= before[item]
            assert available >= 0 or counted
        for stream, state in stored_then_folded.items():
            assert scenario.head(stream).state == state
    for item in SKUS:
        assert level_of(scenario.stock("s1", item)).reserved >= 0


@settings(max_examples=200, deadline=None)
@given(movements)
def test_a_bounded_state_refuses_a_count_rather_than_resolving_it_approximately(
    arrivals: list[tuple[str, int, int, bool]],
) -> None:
    with patch.object(stock_evolution, "DETAIL_LIMIT", 4):
        scenario = Scenario(store("s1", negative_stock="allow"), product("A"))
        accepted = []
        for index, arrival in enumerate(arrivals):
            try:
                scenario.when(command_for(index, *arrival))
            except ValidationRejected:
                assert arrival[0] == "counted"
                continue
            accepted.append(arrival)
        state = scenario.stock("s1", "A")
    assert len(state.after_count) <= 4
    assert state.on_hand == rule_three(accepted)
