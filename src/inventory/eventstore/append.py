"""An append as one statement: append_events' arguments, and what its rows or errors mean."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import DuplicateEvent, WrongExpectedVersion
from inventory.eventstore.records import ANY, Recorded, StreamHead, StreamWrite
from inventory.eventstore.script import Statement

# migrations/0007_append_events.sql (0010: by key): lock, check, insert and update in one
# round trip.
APPEND = "SELECT id, position, stream, version FROM append_events(%s::jsonb, %s::jsonb)"
WRONG_EXPECTED_VERSION = "IV409"  # the SQLSTATE append_events raises

_json = msgspec.json.Encoder()


class _EventDocument(msgspec.Struct, omit_defaults=True):
    """One event as append_events reads it."""

    id: uuid.UUID
    type: str
    data: msgspec.Raw
    store: str | None = None
    sku: str | None = None
    occurred_at: datetime | None = None


class _WriteDocument(msgspec.Struct, omit_defaults=True):
    """One write as append_events reads it; no `state` key keeps the stored state."""

    stream: str
    expected: int
    events: list[_EventDocument]
    state: msgspec.Struct | None = None


@dataclass(frozen=True)
class Appending:
    """An append as one statement, for a caller that sends it with others in a round trip
    (a command's transaction: append, response and COMMIT together)."""

    statement: Statement
    kinds: Mapping[uuid.UUID, str]
    """Each new event's type tag, by id."""
    landing: list[tuple[uuid.UUID, str, int]] | None
    """Each new event's id, stream and version, in insertion order, when known before
    the round trip (every base version locked or expected): only positions are not."""

    def recorded(self, rows: Iterable[Any]) -> list[Recorded]:
        """Where each event landed, from the statement's rows, in position order."""
        return [
            Recorded(
                id=id_, position=position, stream=stream, version=version, type=self.kinds[id_]
            )
            for id_, position, stream, version in rows
        ]

    def expected(self) -> list[Recorded]:
        """Where each event will land, positions 0, in insertion order (which the
        statement's position order follows); requires `landing`."""
        if self.landing is None:
            raise ValueError("the base versions are not all known before the append")
        return [
            Recorded(id=id_, position=0, stream=stream, version=version, type=self.kinds[id_])
            for id_, stream, version in self.landing
        ]

    def failure(self, error: psycopg.Error) -> Exception:
        """What a failed send of the statement means: WrongExpectedVersion, DuplicateEvent,
        or the error itself."""
        if isinstance(error, psycopg.errors.UniqueViolation):
            return DuplicateEvent(str(error).splitlines()[0])
        if error.sqlstate == WRONG_EXPECTED_VERSION and error.diag.message_detail:
            stream, expected, current = error.diag.message_detail.split("\t")
            return WrongExpectedVersion(stream, int(expected), int(current))
        return error


def appending(
    codec: Codec,
    writes: Sequence[StreamWrite],
    metadata: Mapping[str, Any] | None = None,
    *,
    locked: Mapping[str, StreamHead] | None = None,
) -> Appending:
    """The append of `writes` as a statement. `locked` passes the heads of an earlier lock
    in the same transaction: versions are checked against them before the round trip, and
    locked streams the command did not write lose their placeholder rows."""
    if locked is not None:
        _check_expected(writes, locked)
        written = {write.stream for write in writes}
        writes = [
            *writes,
            *(StreamWrite(name, ()) for name in sorted(locked) if name not in written),
        ]
    if len({write.stream for write in writes}) != len(writes):
        raise ValueError("each stream may appear in one write only")
    kinds: dict[uuid.UUID, str] = {}
    documents = [_document(codec, write, kinds) for write in writes]
    arguments = (_json.encode(documents).decode(), _json.encode(metadata or {}).decode())
    return Appending((APPEND, arguments), kinds, _landing(writes, locked))


def _document(codec: Codec, write: StreamWrite, kinds: dict[uuid.UUID, str]) -> _WriteDocument:
    """One write as append_events reads it; records each new event's type tag in `kinds`."""
    events = []
    for new in write.events:
        tag, data = codec.encode(new.event)
        kinds[new.id] = tag
        events.append(
            _EventDocument(new.id, tag, msgspec.Raw(data), new.store, new.sku, new.occurred_at)
        )
    return _WriteDocument(write.stream, write.expected_version, events, write.state)


def _check_expected(writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead]) -> None:
    for write in writes:
        head = locked.get(write.stream)
        if head is None:
            raise RuntimeError(f"stream {write.stream!r} was not locked")
        if write.expected_version not in (ANY, head.version):
            raise WrongExpectedVersion(write.stream, write.expected_version, head.version)


def _landing(
    writes: Sequence[StreamWrite], locked: Mapping[str, StreamHead] | None
) -> list[tuple[uuid.UUID, str, int]] | None:
    """Each new event's id, stream and version, in the order append_events inserts them
    (writes, then events), when every base version is known: locked, or expected."""
    landing: list[tuple[uuid.UUID, str, int]] = []
    for write in writes:
        head = locked.get(write.stream) if locked is not None else None
        base = head.version if head is not None else write.expected_version
        if base == ANY:
            return None
        landing.extend(
            (new.id, write.stream, base + place) for place, new in enumerate(write.events, 1)
        )
    return landing
