"""What the event store takes and gives back: new events, writes, heads, recorded events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

ANY = -1
"""Expected version: append whatever the stream's version."""
NO_STREAM = 0
"""Expected version: the stream must not exist yet."""


@dataclass(frozen=True)
class NewEvent:
    """An event to append, with its partition key and business time."""

    event: msgspec.Struct
    store: str | None = None
    sku: str | None = None
    occurred_at: datetime | None = None  # default: now
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class StreamWrite:
    """Events for one stream, the version it must be at, and its state after them."""

    stream: str
    events: Sequence[NewEvent]
    expected_version: int = ANY
    state: msgspec.Struct | None = None


@dataclass(frozen=True)
class StreamHead:
    """A locked stream's current version (0: no stream) and its stored state as JSON."""

    version: int
    state: bytes | None


@dataclass(frozen=True)
class Recorded:
    """Where an appended event landed."""

    id: uuid.UUID
    position: int
    stream: str
    version: int
    type: str


@dataclass(frozen=True)
class StoredEvent:
    """An event read back from a stream."""

    position: int
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    event: msgspec.Struct
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
