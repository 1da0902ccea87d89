"""Wake-up entries and the listener's bookkeeping of wake-ups held for their event."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from inventory.worker.context import Serving
from inventory.worker.listener import AWAIT_SECONDS, MAX_AWAITED, admit, settle
from inventory.worker.wakeups import entry, parse

partitions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.]{0,63}", fullmatch=True) | st.just("")


@given(partitions, st.none() | st.integers(1, 2**63 - 1))
def test_an_entry_reads_back_as_its_partition_and_position(
    partition: str, position: int | None
) -> None:
    assert parse(entry(partition, position)) == (partition, position)


def test_none_is_the_partition_of_no_store_and_a_bare_partition_is_the_old_form() -> None:
    assert entry(None, 7) == " 7"
    assert parse(" 7") == ("", 7)
    assert parse("s1") == ("s1", None)
    # Not a position: the text is taken as it came, never as a number it does not spell.
    assert parse("s1 \uff17") == ("s1 \uff17", None)  # a fullwidth 7
    assert parse("s1 -3") == ("s1 -3", None)
    assert parse("s1 " + "9" * 19) == ("s1 " + "9" * 19, None)  # past a bigint
    assert parse("s1 " + "1" * 400) == ("s1 " + "1" * 400, None)


def test_a_wake_up_with_a_position_is_served_at_once_and_again_when_its_event_arrives() -> None:
    serving = Serving()
    admit(serving, ["a", entry("b", 10), entry("c", 11), entry("b", 12)], now=100.0)
    assert serving.woken == {"a", "b", "c"}
    assert set(serving.awaited) == {("b", 10), ("c", 11), ("b", 12)}
    serving.woken.clear()  # the round that follows at once

    assert settle(serving, {10, 11}, now=100.1) == (2, 0)
    assert serving.woken == {"b", "c"}
    assert set(serving.awaited) == {("b", 12)}  # b's other command has not arrived yet
    serving.woken.clear()

    assert settle(serving, set(), now=100.0 + AWAIT_SECONDS + 0.1) == (0, 1)
    assert not serving.awaited  # let go: the sweep projects it when it arrives
    assert not serving.woken


def test_past_the_bound_a_wake_up_is_only_served_at_once() -> None:
    serving = Serving()
    admit(serving, [entry("s", n) for n in range(1, MAX_AWAITED + 3)], now=0.0)
    assert len(serving.awaited) == MAX_AWAITED
    assert ("s", MAX_AWAITED + 2) not in serving.awaited
    assert serving.woken == {"s"}
