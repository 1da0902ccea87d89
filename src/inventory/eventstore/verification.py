"""The audit's questions about the primary's streams, answered from the event store.

- **versions**: does every stream hold versions 1..n without a gap, and does its head in
  `streams` say n?
- **events**: does every stored event decode under its type, with the schema of today?
- **states**: does folding each stream's events reproduce the state stored beside it
  (the state every command decides against)?

Read-only, as the app role; `inventory audit verify` (cli/audit.py) prints the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg

from inventory.domain.events import Event
from inventory.domain.evolution import evolve
from inventory.domain.state import decode_state, initial_state
from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import UnknownEventType

EXAMPLES = 10  # findings printed per check


@dataclass
class Check:
    """One question's answer: how much was looked at, and what was found wrong."""

    name: str
    checked: int = 0
    what: str = ""
    findings: list[str] = field(default_factory=list)
    problems: int = 0

    def problem(self, text: str) -> None:
        """Record a finding (the first few are kept for the report)."""
        self.problems += 1
        if len(self.findings) < EXAMPLES:
            self.findings.append(text)

    @property
    def ok(self) -> bool:
        """Whether nothing was found wrong."""
        return self.problems == 0


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection in UTC (so both servers print times alike)."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def scope(store: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition on events that limits a check to one store (or none)."""
    return (" AND store = %s", (store,)) if store else ("", ())


def _stream_scope(store: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition on streams for one store: those with an event of the store."""
    if not store:
        return "", ()
    return " AND stream IN (SELECT stream FROM events WHERE store = %s)", (store,)


def count_events(conn: psycopg.Connection[Any], store: str | None) -> int:
    """How many events (of `store`, or of all) the server holds."""
    where, params = scope(store)
    row = conn.execute(f"SELECT count(*) FROM events WHERE true {where}", params).fetchone()
    return int((row or (0,))[0])


def check_versions(primary: psycopg.Connection[Any], store: str | None) -> Check:
    """Versions 1..n per stream, and `streams.version` = n."""
    check = Check("versions", what="streams")
    where, params = scope(store)
    rows = primary.execute(
        f"""
        SELECT e.stream, e.count, e.low, e.high, s.version
        FROM (SELECT stream, count(*) AS count, min(version) AS low, max(version) AS high
              FROM events WHERE true {where} GROUP BY stream) AS e
        LEFT JOIN streams AS s USING (stream)
        """,
        params,
    ).fetchall()
    for stream, count, low, high, head in rows:
        check.checked += 1
        if low != 1 or high != count:
            check.problem(f"{stream}: {count} events with versions {low}..{high}")
        elif head != high:
            check.problem(f"{stream}: events end at version {high}, streams says {head}")
    return check


def check_states(
    primary_url: str,
    store: str | None,
    codec: Codec,
    progress: Callable[[int], None] | None = None,
) -> tuple[Check, Check]:
    """Every event decodes with `codec` (every event type the primary stores); every
    domain stream's fold equals its stored state."""
    fold = _Fold(Check("events", what="events"), Check("states", what="streams"), codec)
    fold.progress = progress
    where, params = _stream_scope(store)
    with psycopg.connect(primary_url) as conn:
        # One snapshot for both cursors: a command committing between them would
        # otherwise show a state newer than the events read.
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        events = conn.cursor(name="audit_events")
        events.itersize = 5_000
        events.execute(
            f"SELECT stream, version, type, data::text FROM events WHERE true {where}"
            " ORDER BY stream, version",
            params,
        )
        stored = conn.cursor(name="audit_streams")
        stored.itersize = 5_000
        stored.execute(
            f"SELECT stream, state::text FROM streams WHERE version > 0 {where} ORDER BY stream",
            params,
        )
        fold.heads = StoredStates(iter(stored))
        for stream, version, type_, data in events:
            fold.take(stream, version, type_, data)
        fold.finish()
        conn.rollback()
    return fold.decodes, fold.states


class _Fold:
    """The events in stream order, each decoded and folded; each stream's fold compared
    with its stored state when the next stream begins."""

    def __init__(self, decodes: Check, states: Check, codec: Codec) -> None:
        self.decodes, self.states, self.codec = decodes, states, codec
        self.progress: Callable[[int], None] | None = None
        self.heads = StoredStates(iter(()))
        self.current: str | None = None
        self.state: Any = None

    def take(self, stream: str, version: int, type_: str, data: str) -> None:
        """Decode one event and fold it into its stream's state."""
        if stream != self.current:
            self._compare()
            self.current, self.state = stream, _initial(stream)
        self.decodes.checked += 1
        if self.progress is not None and self.decodes.checked % 1000 == 0:
            self.progress(1000)
        try:
            event = self.codec.decode(type_, data)
        except (UnknownEventType, msgspec.ValidationError, msgspec.DecodeError) as error:
            self.decodes.problem(f"{stream} v{version} ({type_}): {error}")
            self.state = None  # no fold past an event that cannot be read
            return
        if self.state is not None and isinstance(event, Event):
            self.state = evolve(self.state, event)
        elif self.state is not None:
            self.decodes.problem(f"{stream} v{version} ({type_}): not a stock-domain event")

    def finish(self) -> None:
        """Compare the last stream; the progress bar ends at 100%."""
        self._compare()
        if self.progress is not None and self.decodes.checked % 1000:
            self.progress(self.decodes.checked % 1000)

    def _compare(self) -> None:
        if self.current is None or self.state is None:
            return
        self.states.checked += 1
        found, text = self.heads.state_of(self.current)
        if not found:
            self.states.problem(f"{self.current}: has events but no stored state")
        elif decode_state(self.current, text) != self.state:
            self.states.problem(f"{self.current}: the stored state is not the fold of its events")


def _initial(stream: str) -> Any:
    try:
        return initial_state(stream)
    except (ValueError, KeyError):
        return None  # not a stream with a state (the identity audit stream)


class StoredStates:
    """The `streams` rows in stream order, consumed alongside the events' streams."""

    def __init__(self, rows: Iterator[tuple[str, str | None]]) -> None:
        self.rows = rows
        self.next: tuple[str, str | None] | None = next(rows, None)

    def state_of(self, stream: str) -> tuple[bool, str | None]:
        """(found, state JSON) of `stream`; rows before it (no events) are skipped."""
        while self.next is not None and self.next[0] < stream:
            self.next = next(self.rows, None)
        if self.next is None or self.next[0] != stream:
            return False, None
        found, self.next = self.next, next(self.rows, None)
        return True, found[1]
