"""Replica events back into domain events, for projectors that fold them with `evolve`."""

from __future__ import annotations

from typing import Any

import msgspec

from inventory.domain.events import ALL_EVENTS, Event
from inventory.eventstore.codec import Codec
from inventory.projectors.engine import ReplicaEvent

CODEC = Codec(ALL_EVENTS)
_metadata = msgspec.json.Decoder(dict[str, Any])


def domain_event(event: ReplicaEvent) -> Event | None:
    """The domain event, or None for a type the domain does not define (e.g. audit)."""
    if event.type not in CODEC.tags:
        return None
    decoded: Event = CODEC.decode(event.type, event.data)  # type: ignore[assignment]
    return decoded


def actor_of(event: ReplicaEvent) -> str | None:
    """The id of the user or API key whose command recorded the event."""
    actor = _metadata.decode(event.metadata).get("actor")
    if isinstance(actor, dict):
        found = actor.get("id")
        return str(found) if found is not None else None
    return None
