"""What a read model's projector is to the engine: the events it gets, the cursor it
writes with, the `Projector` base class and the `Builder` a rebuild folds into."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import msgspec
import psycopg

Cursor = psycopg.Cursor[Any]


class ReplicaEvent(msgspec.Struct, frozen=True):
    """An event as the replica holds it: the primary's columns plus `seq` (a msgspec
    struct: made once per event read, it costs a fifteenth of a frozen dataclass)."""

    seq: int
    position: int
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    data: bytes
    metadata: bytes
    occurred_at: datetime
    recorded_at: datetime
    partition: str


def shadow(table: str) -> str:
    """The name a table's replacement has while a rebuild fills it."""
    return f"{table}__rebuild"


class Builder(Protocol):
    """A projector's read model folded from every event in memory, for a rebuild: fed the
    events in seq order, it writes into the shadow tables (`shadow(table)`)."""

    prefixes: tuple[str, ...]  # the event types whose domain event `feed` needs decoded

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Fold one event (`decoded`: its domain event if its type has a prefix, or None)."""

    def flush(self, cur: Cursor) -> None:
        """Write what is final already (called between chunks of events)."""

    def finish(self, cur: Cursor) -> None:
        """Write the rest, after the last event."""


class Projector:
    """A named read model built from events, one partition (store) at a time.

    Subclasses name the tables they own (cleared on rebuild) and either map event types
    to handlers or override `apply` to handle a whole batch at once.
    """

    name: str = ""
    tables: tuple[str, ...] = ()

    def handlers(self) -> dict[str, Callable[[Cursor, ReplicaEvent], None]]:
        """Event type → handler; types without a handler are not this projector's concern."""
        return {}

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Apply a batch of one partition's events, in seq order, inside the transaction."""
        handlers = self.handlers()
        for event in events:
            handler = handlers.get(event.type)
            if handler is not None:
                handler(cur, event)

    def builder(self) -> Builder:
        """A fresh in-memory fold of this read model, for `rebuild`."""
        raise NotImplementedError(f"{self.name} has no rebuild builder")

    def merge_folds(self, cur: Cursor) -> None:
        """After several folds wrote their shares of the partitions into the shadows, make
        their rows the ones a single fold writes. Nothing to do for a read model whose
        every row belongs to one partition (an item, a store's day); `stream_heads` has
        streams whose events lie in two (a transfer's stores, a store and no store)."""
