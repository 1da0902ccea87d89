"""Between the store's records and the domain: locked heads as a decision's context, and
its changes as the writes that append them. One definition for a command and an import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from inventory.domain.context import Change, Context, Head
from inventory.domain.state import decode_state
from inventory.eventstore.records import NewEvent, StreamHead, StreamWrite


def context_of(
    locked: Mapping[str, StreamHead], shared: Mapping[str, StreamHead], streams: Iterable[str]
) -> Context:
    """The streams' versions and decoded states as read under their locks (a stream not
    yet written is at version 0, in its initial state)."""
    heads = {}
    for stream in streams:
        head = locked.get(stream) or shared.get(stream) or StreamHead(0, None)
        heads[stream] = Head(head.version, decode_state(stream, head.state))
    return Context(heads)


def writes_of(changes: Sequence[Change], before: Context, after: Context) -> list[StreamWrite]:
    """One write per stream: its events in order, expected at the version the client named
    (a count line's) or else the one read, carrying the state the changes leave."""
    grouped: dict[str, list[Change]] = {}
    for change in changes:
        grouped.setdefault(change.stream, []).append(change)
    writes = []
    for stream, own in grouped.items():
        expected = next(
            (c.expected_version for c in own if c.expected_version is not None),
            before.version(stream),
        )
        events = [NewEvent(c.event, c.store, c.sku, c.occurred_at) for c in own]
        writes.append(StreamWrite(stream, events, expected, after.head(stream).state))
    return writes
