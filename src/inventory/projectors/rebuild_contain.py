"""A rebuild's containment: an event a projector cannot fold stops that projector in that
partition, as `containment.py` stops the live one.

The live projector applies a partition's events up to the one it cannot apply, records a
stall (`stalls.py`) and stays before it; the other projectors and partitions go on. A
rebuild does the same: the projector's builder gets none of the partition's later events,
its checkpoint there is the last event before (seq and highest position; 0 when there is
none), and the stall is recorded when the rebuild commits. The failing event is one whose
domain event cannot be decoded (for each projector whose live `apply` decodes its type)
or whose fold raises (for that builder: a builder changes its state only once an event's
rows are computed, so a failing event leaves nothing of itself behind).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from inventory.projectors.stalls import Stall
from inventory.readmodels.decoding import domain_event
from inventory.readmodels.projection import Builder, ReplicaEvent


@dataclass(frozen=True)
class Stop:
    """A projector stopped in a partition: its stall, and its checkpoint there."""

    stall: Stall
    seq: int
    position: int

    def as_json(self) -> list[Any]:
        """The stop as JSON values (a helper process's output)."""
        s = self.stall
        fields = [s.projector, s.partition, s.seq, s.position, s.stream, s.event_type]
        return [*fields, s.error_class, s.error, self.seq, self.position]

    @classmethod
    def from_json(cls, values: list[Any]) -> Stop:
        """The stop `as_json` wrote."""
        return cls(Stall(*values[:8]), values[8], values[9])


Stops = dict[tuple[str, str], Stop]  # (projector, partition): where it stopped


@dataclass
class Fed:
    """The projectors a partition's events go to: builders (fed) and watchers (only
    stopped: their read model is built by SQL, up to where they stop)."""

    builders: list[tuple[str, Builder]]
    watchers: list[tuple[str, Callable[[str], bool]]]


class Feeder:
    """Feeds one partition's events to the builders, stopping any that cannot take one."""

    def __init__(self, fed: Fed, partition: str, stops: Stops) -> None:
        self.partition, self.stops = partition, stops
        self.named = list(fed.builders)
        self.builders = [builder for _, builder in self.named]
        self.watchers = list(fed.watchers)
        self.prefixes = tuple(prefix for b in self.builders for prefix in b.prefixes)
        self.last = self.highest = 0  # the events fed so far: last seq, highest position

    def feed(self, rows: Sequence[Sequence[Any]]) -> None:
        """Feed the partition's next events (rows of `rebuild_fold.PARTITION_EVENTS`)."""
        prefixes, builders = self.prefixes, self.builders
        for row in rows:
            event = ReplicaEvent(*row)
            decoded: object = None
            builder: Builder | None = None  # the builder being fed, if decoding went through
            try:
                decoded = domain_event(event) if event.type.startswith(prefixes) else None
                for builder in builders:  # the one that raises is read by the handler
                    builder.feed(event, decoded)
            except Exception as error:  # noqa: BLE001 # any error: contained as live
                if builder is None:
                    self._undecodable(event, error)
                else:
                    self._unfoldable(event, decoded, builder, error)
                prefixes, builders = self.prefixes, self.builders
            self.last, self.highest = event.seq, max(self.highest, event.position)

    def _undecodable(self, event: ReplicaEvent, error: Exception) -> None:
        """Stop each projector that decodes the event's type; the rest go on without it
        (none of them reads a domain event of that type)."""
        for name, builder in list(self.named):
            if wants(builder, event.type):
                self._stop(name, event, error)
        for name, decodes in list(self.watchers):
            if decodes(event.type):
                self._stop(name, event, error)
        for builder in self.builders:
            builder.feed(event, None)

    def _unfoldable(
        self, event: ReplicaEvent, decoded: object, failing: Builder, error: Exception
    ) -> None:
        """Stop the builder that raised; feed the event to those after it."""
        index = next(i for i, (_, b) in enumerate(self.named) if b is failing)
        later = self.named[index + 1 :]
        self._stop(self.named[index][0], event, error)
        for name, builder in later:
            try:
                builder.feed(event, decoded)
            except Exception as failed:  # noqa: BLE001 # as above
                self._stop(name, event, failed)

    def _stop(self, name: str, event: ReplicaEvent, error: BaseException) -> None:
        self.stops[(name, self.partition)] = Stop(Stall.of(name, event, error), *self.before())
        self.named = [(n, b) for n, b in self.named if n != name]
        self.watchers = [(n, d) for n, d in self.watchers if n != name]
        self.builders = [builder for _, builder in self.named]
        self.prefixes = tuple(prefix for b in self.builders for prefix in b.prefixes)

    def before(self) -> tuple[int, int]:
        """The last seq and highest position fed so far (0 before any)."""
        return self.last, self.highest


def wants(builder: Builder, event_type: str) -> bool:
    """Whether the builder's projector decodes events of `event_type` (its `decodes`, or
    the types of its prefixes)."""
    decodes: frozenset[str] | None = getattr(builder, "decodes", None)
    if decodes is not None:
        return event_type in decodes
    return event_type.startswith(builder.prefixes)
