"""A rebuild's containment: an event a builder cannot take stops that builder in its
partition, before the event; the others, and the builder elsewhere, go on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from inventory.projectors.rebuild_contain import Fed, Feeder, Stop, Stops
from inventory.projectors.rebuild_plan import share_out
from inventory.readmodels.projection import Cursor, ReplicaEvent

NOW = datetime(2026, 12, 3, tzinfo=UTC)
RECEIVED = b'{"store_id": "s1", "sku": "A", "occurred_at": "2026-12-03T00:00:00Z", "quantity": "1"}'


class Recorder:
    """A builder that keeps the seqs it is fed and fails on the seqs it is told to."""

    prefixes: tuple[str, ...] = ("stock.",)

    def __init__(self, fails_at: frozenset[int] = frozenset()) -> None:
        self.fed: list[tuple[int, bool]] = []
        self.fails_at = fails_at

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        if event.seq in self.fails_at:
            raise ValueError(f"cannot fold {event.seq}")
        self.fed.append((event.seq, decoded is not None))

    def flush(self, cur: Cursor) -> None:
        """Nothing to write."""

    def finish(self, cur: Cursor) -> None:
        """Nothing to write."""


def _row(seq: int, data: bytes = RECEIVED, kind: str = "stock.received") -> tuple[Any, ...]:
    position = 100 - seq  # positions need not follow seq
    return (seq, position, "stock-s1-A", seq, kind, "s1", "A", data, b"{}", NOW, NOW, "s1")


def test_an_undecodable_event_stops_the_builders_that_decode_its_type_only() -> None:
    stock, other = Recorder(), Recorder()
    other.prefixes = ("product.",)
    watched: list[str] = []
    fed = Fed(
        [("stock", stock), ("other", other)], [("daily", lambda t: watched.append(t) or True)]
    )
    stops: Stops = {}
    feeder = Feeder(fed, "s1", stops)

    feeder.feed([_row(1), _row(2, b'{"quantity": "lots"}'), _row(3)])

    assert stock.fed == [(1, True)]
    # Decoded while the stock builder takes them; not once it has stopped.
    assert other.fed == [(1, True), (2, False), (3, False)]
    assert set(stops) == {("stock", "s1"), ("daily", "s1")}
    stop = stops[("stock", "s1")]
    assert (stop.seq, stop.position) == (1, 99)
    assert (stop.stall.seq, stop.stall.position, stop.stall.event_type) == (2, 98, "stock.received")
    assert stop.stall.error_class == "msgspec.ValidationError"
    assert feeder.before() == (3, 99)
    assert Stop.from_json(stop.as_json()) == stop


def test_a_builder_that_raises_stops_and_those_after_it_still_get_the_event() -> None:
    first, failing, last = Recorder(), Recorder(frozenset({2})), Recorder()
    stops: Stops = {}
    fed = Fed([("first", first), ("failing", failing), ("last", last)], [])

    Feeder(fed, "s1", stops).feed([_row(1), _row(2), _row(3)])
    Feeder(fed, "s2", stops).feed([_row(4)])  # another partition: it folds again

    assert first.fed == last.fed == [(1, True), (2, True), (3, True), (4, True)]
    assert failing.fed == [(1, True), (4, True)]
    assert list(stops) == [("failing", "s1")]
    assert stops[("failing", "s1")].stall.error == "cannot fold 2"


def test_a_stop_at_a_partition_s_first_event_leaves_its_checkpoint_at_zero() -> None:
    stops: Stops = {}
    Feeder(Fed([("stock", Recorder())], []), "s1", stops).feed([_row(5, b"{}")])
    assert (stops[("stock", "s1")].seq, stops[("stock", "s1")].position) == (0, 0)


def test_partitions_are_shared_out_by_event_count() -> None:
    counts = {"a": 10, "b": 7, "c": 5, "d": 2, "": 1}
    assert share_out(counts, 2) == [["", "a", "d"], ["b", "c"]]
    assert share_out(counts, 1) == [["", "a", "b", "c", "d"]]
    assert share_out({}, 2) == []
    # This process first, while a helper starts: the helper gets less.
    assert share_out(counts, 2, head_start=6) == [["", "a", "c"], ["b", "d"]]
