"""The events' hash chain: an event's canonical encoding and its link (docs/audit.md)."""

# migrations/0080_event_chains.sql computes the same bytes in SQL (event_link); the two
# must agree byte for byte: tests/integration/test_chain.py checks every link the SQL made,
# tests/unit/test_chain.py this module against ops/verify_chain.py.

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import NamedTuple

ZERO = "0" * 64
"""The link before a store's first event."""

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def jsonb_string(text: str) -> str:
    """`text` as PostgreSQL's jsonb output writes a string (escape_json)."""
    out = ['"']
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def timestamp(moment: datetime) -> str:
    """A time as the encoding writes it: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Fields(NamedTuple):
    """What the encoding covers, in its order (data and metadata as jsonb text)."""

    id: uuid.UUID | str
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: str
    metadata: str


def encoding(event: Fields) -> str:
    """The canonical encoding: the jsonb text of [id, stream, version, type, store, sku,
    occurred_at, recorded_at, data, metadata]."""
    fields = [
        jsonb_string(str(event.id)),
        jsonb_string(event.stream),
        str(event.version),
        jsonb_string(event.type),
        "null" if event.store is None else jsonb_string(event.store),
        "null" if event.sku is None else jsonb_string(event.sku),
        jsonb_string(timestamp(event.occurred_at)),
        jsonb_string(timestamp(event.recorded_at)),
        event.data,
        event.metadata,
    ]
    return "[" + ", ".join(fields) + "]"


def link(previous: str, encoded: str) -> str:
    """An event's chain: hex SHA-256 of the previous link's hex and the encoding (UTF-8)."""
    return hashlib.sha256((previous + encoded).encode()).hexdigest()
