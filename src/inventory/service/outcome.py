"""What the service takes and answers: who sends a command, its key, the decision, the response."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from inventory.domain.context import Context
from inventory.domain.errors import CommandRejected
from inventory.domain.events import Event
from inventory.service.result import CommandResult


class IdempotencyKeyReused(Exception):
    """The key was first used with another request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Actor:
    """Who sends a command, as every event's metadata names them."""

    id: str
    kind: str
    name: str
    role: str
    ip: str | None = None
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass(frozen=True)
class Idempotency:
    """A client's key and the fingerprint of the request it came with."""

    key: str
    fingerprint: bytes

    @classmethod
    def of(cls, key: str, *parts: bytes | str) -> Idempotency:
        """The key with a sha256 fingerprint of the request's parts (method, path, body)."""
        digest = hashlib.sha256()
        for part in parts:
            chunk = part.encode() if isinstance(part, str) else part
            digest.update(len(chunk).to_bytes(8, "big") + chunk)
        return cls(key, digest.digest())


@dataclass(frozen=True)
class Decision:
    """An accepted command: its result and every touched stream's state afterwards."""

    result: CommandResult
    after: Context
    partitions: frozenset[str | None]
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The response to send: the first one again when `replayed`."""

    status: int
    body: bytes
    replayed: bool = False
    decision: Decision | None = None


class Responder(Protocol):
    """Renders the response the service sends and stores for replays (the API's business)."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        """Status and body for an accepted command, rendered once, before the events have
        positions: each position in `decision.result` is a mark (eventstore/positions.py)
        to encode as it is (msgspec does), which the service fills in."""

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        """Status and body for a refused one."""
