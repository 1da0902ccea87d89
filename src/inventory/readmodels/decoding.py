"""Replica events back into domain events, for projectors that fold them with `evolve`."""

from __future__ import annotations

import msgspec

from inventory.domain.events import ALL_EVENTS, Event
from inventory.eventstore.codec import Codec
from inventory.readmodels.projection import ReplicaEvent

CODEC = Codec(ALL_EVENTS)
TAGS = CODEC.tags


class _Actor(msgspec.Struct):
    id: str | None = None


class _Metadata(msgspec.Struct):
    """Only the part of an event's metadata the ledger shows (other keys are skipped)."""

    actor: _Actor | None = None


_metadata = msgspec.json.Decoder(_Metadata)


def domain_event(event: ReplicaEvent) -> Event | None:
    """The domain event, or None for a type the domain does not define (e.g. audit)."""
    if event.type not in TAGS:
        return None
    decoded: Event = CODEC.decode(event.type, event.data)  # type: ignore[assignment]
    return decoded


def actor_of(event: ReplicaEvent) -> str | None:
    """The id of the user or API key whose command recorded the event."""
    try:
        actor = _metadata.decode(event.metadata).actor
    except msgspec.ValidationError:  # metadata of another shape names no actor we can show
        return None
    return actor.id if actor is not None else None
