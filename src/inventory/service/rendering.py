"""What both command paths build alike: the events' metadata and the response, rendered once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inventory.domain.context import Change, Context
from inventory.eventstore.idempotency import Remembered
from inventory.eventstore.positions import fill
from inventory.eventstore.records import Recorded
from inventory.service.outcome import (
    Actor,
    Decision,
    Idempotency,
    IdempotencyKeyReused,
    Outcome,
    Responder,
)
from inventory.service.result import marked, result_of


def metadata_of(actor: Actor, command_id: str, idempotency: Idempotency | None) -> dict[str, Any]:
    """Every event's metadata: who sent the command, which command, which request."""
    return {
        "actor": {"id": actor.id, "kind": actor.kind, "name": actor.name, "role": actor.role},
        "command_id": command_id,
        "idempotency_key": idempotency.key if idempotency else None,
        "correlation_id": actor.correlation_id or actor.request_id,
        "causation_id": actor.causation_id,
        "request_id": actor.request_id,
        "ip": actor.ip,
    }


def accepted(
    responder: Responder,
    command_id: str,
    expected: Sequence[Recorded],
    changes: Sequence[Change],
    after: Context,
) -> tuple[int, bytes]:
    """The response to an accepted command, rendered before its events have positions:
    marks where they go (positions.py), filled by the store where it stores it."""
    result = result_of(command_id, expected, changes, after)
    partitions = frozenset(change.store for change in changes)
    events = tuple(change.event for change in changes)
    return responder.accepted(Decision(marked(result), after, partitions, events))


def landed(
    response: tuple[int, bytes],
    command_id: str,
    recorded: Sequence[Recorded],
    changes: Sequence[Change],
    after: Context,
) -> Outcome:
    """The outcome of an accepted command once its events have positions."""
    status, body = response
    partitions = frozenset(change.store for change in changes)
    events = tuple(change.event for change in changes)
    decision = Decision(result_of(command_id, recorded, changes, after), after, partitions, events)
    return Outcome(status, fill(body, [event.position for event in recorded]), decision=decision)


def replayed(remembered: Remembered, idempotency: Idempotency) -> Outcome:
    """The key's stored response, for the request it first came with only."""
    if remembered.fingerprint != idempotency.fingerprint:
        raise IdempotencyKeyReused(
            f"the Idempotency-Key {idempotency.key!r} was first used with another request"
        )
    return Outcome(remembered.status, remembered.body, replayed=True)
