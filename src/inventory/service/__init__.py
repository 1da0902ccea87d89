"""The command service: handle(command) in one transaction from the event store; no SQL text."""

from inventory.service.handler import CommandService
from inventory.service.outcome import (
    Actor,
    Decision,
    Idempotency,
    IdempotencyKeyReused,
    Outcome,
    Responder,
)

__all__ = [
    "Actor",
    "CommandService",
    "Decision",
    "Idempotency",
    "IdempotencyKeyReused",
    "Outcome",
    "Responder",
]
