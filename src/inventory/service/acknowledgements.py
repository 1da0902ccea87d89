"""Alert acknowledgements: an event on the primary, so no rebuild of the read side forgets one.

An alert lives on the replica and is rebuilt from the events; its acknowledgement names
the alert by what a rebuild keeps (store, SKU, kind and the position of the event that
opened it) and is joined back to it by the alerts query (readmodels/alert_reads.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg

from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import WrongExpectedVersion
from inventory.eventstore.records import NO_STREAM, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.service.outcome import Actor

NOTE_LENGTH = 1000


class AlertAcknowledged(msgspec.Struct, frozen=True, tag="alert.acknowledged"):
    """Someone took charge of an open alert, perhaps with a note."""

    store: str
    sku: str
    kind: str
    opened_position: int
    acknowledged_by: str
    note: str | None


_store = EventStore(Codec((AlertAcknowledged,)))


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """The acknowledgement in force: this request's (with its position) or an earlier one."""

    acknowledged_at: datetime
    acknowledged_by: str
    note: str | None
    position: int | None  # None: an earlier request acknowledged the alert first


def stream_of(event: AlertAcknowledged) -> str:
    """One stream per alert (its opening event's position names it: that event opened no
    other alert of its kind), so a second acknowledgement finds the stream taken."""
    return f"alert-ack-{event.opened_position}-{event.kind}"


async def acknowledge(
    conn: psycopg.AsyncConnection[Any], actor: Actor, event: AlertAcknowledged
) -> Acknowledged:
    """Append the acknowledgement, unless the alert has one already: the first stands."""
    at = datetime.now(UTC)
    new = NewEvent(event, store=event.store, sku=event.sku, occurred_at=at)
    write = StreamWrite(stream_of(event), [new], expected_version=NO_STREAM)
    try:
        async with conn.transaction():
            recorded = await _store.append(conn, [write], _metadata(actor))
    except WrongExpectedVersion:
        (first, *_) = await _store.read_stream(conn, stream_of(event))
        earlier = first.event
        assert isinstance(earlier, AlertAcknowledged)
        return Acknowledged(first.occurred_at, earlier.acknowledged_by, earlier.note, None)
    return Acknowledged(at, event.acknowledged_by, event.note, recorded[0].position)


def _metadata(actor: Actor) -> dict[str, Any]:
    return {
        "actor": {"id": actor.id, "kind": actor.kind, "name": actor.name, "role": actor.role},
        "correlation_id": actor.correlation_id or actor.request_id,
        "causation_id": actor.causation_id,
        "request_id": actor.request_id,
        "ip": actor.ip,
    }
