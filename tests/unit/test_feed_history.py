"""The hub's history: each store's latest messages with no gap among them, and what a
connection behind may take from it."""

from __future__ import annotations

from inventory.feed.frames import text_frame
from inventory.feed.live import History, Live, chains


def _live(store: str, seq: int, prev_seq: int) -> Live:
    text = f'{{"kind":"event","store":"{store}","seq":{seq}}}'
    return Live(store, seq, prev_seq, (text,), text_frame(text.encode()))


def _seqs(lives: list[Live] | None) -> list[int] | None:
    return None if lives is None else [live.seq for live in lives]


def test_a_connection_takes_exactly_what_follows_its_cursor_when_the_history_holds_it() -> None:
    history = History(size=10)
    for chain in chains([_live("a", 10, 4), _live("a", 12, 10), _live("b", 13, 0)]):
        history.add(chain)
    history.add(_live("a", 15, 12))

    assert _seqs(history.after("a", 4)) == [10, 12, 15]
    assert _seqs(history.after("a", 11)) == [12, 15]  # seqs of other stores fall between
    assert _seqs(history.after("a", 15)) == []
    assert history.after("a", 3) is None  # the event after 3 may be older than the history
    assert history.after("c", 0) is None  # nothing known of c
    assert history.latest(frozenset({"a", "b"})) == {"a": 15, "b": 13}
    assert history.latest(frozenset({"a", "c"})) is None
    assert history.latest(None) is None


def test_a_gap_starts_the_store_anew_and_a_republished_range_is_not_held_twice() -> None:
    history = History(size=10)
    for live in (_live("a", 10, 4), _live("a", 12, 10), _live("a", 12, 10), _live("a", 15, 12)):
        history.add(live)
    assert _seqs(history.after("a", 4)) == [10, 12, 15]

    history.add(_live("a", 20, 17))  # 17 never came: only what follows it is held
    assert history.after("a", 15) is None
    assert _seqs(history.after("a", 17)) == [20]

    history.clear()
    assert history.after("a", 17) is None


def test_the_oldest_messages_leave_a_full_history() -> None:
    history = History(size=3)
    seqs = [(n, n - 1) for n in range(1, 8)]
    for seq, prev in seqs:
        history.add(_live("a", seq, prev))
    assert _seqs(history.after("a", 4)) == [5, 6, 7]
    assert history.after("a", 3) is None


def test_past_its_bound_the_history_forgets_the_stores_written_to_least_lately() -> None:
    history = History(size=2, stores=2)
    history.add(_live("a", 1, 0))
    history.add(_live("b", 2, 0))
    history.add(_live("a", 3, 1))
    history.add(_live("c", 4, 0))
    history.add(_live("c", 5, 4))  # five messages held, room for four: b goes

    assert history.after("b", 0) is None
    assert _seqs(history.after("a", 0)) == [1, 3]
    assert _seqs(history.after("c", 0)) == [4, 5]
