"""`inventory audit verify`: check that the recorded history is whole and consistent.

An auditor's questions, each answered from the databases themselves:

- **versions**: does every stream on the primary hold versions 1..n without a gap, and
  does its head in `streams` say n?
- **events**: does every stored event decode under its type, with the schema of today?
- **states**: does folding each stream's events reproduce the state stored beside it
  (the state every command decides against)?
- **replica**: is the replica's events copy the primary's events, row for row (compared
  by hashes of position ranges computed on each server, then row by row where they
  differ)?
- **order**: on the replica, does `seq` (the cursor of projectors and the feed) follow
  each stream's versions?
- **stalls**: is every projector able to go on, or is one stopped at an event of a
  store it cannot apply (projectors/stalls.py)? The history is whole either way, but a
  stalled store's read models stay behind it until a fix ships.

Everything is read-only and runs as the app role. The primary keeps taking commands
meanwhile: events appended after the check began are not compared, and a range that
differs only because the replica has not applied it yet is compared again until
`wait` seconds have passed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec
import psycopg

from inventory.domain.events import ALL_EVENTS, Event
from inventory.domain.evolution import evolve
from inventory.domain.state import decode_state, initial_state
from inventory.eventstore.codec import Codec
from inventory.eventstore.errors import UnknownEventType
from inventory.projectors import stalls
from inventory.projectors.admin import Progress
from inventory.security.events import IDENTITY_EVENTS

CHUNK = 50_000  # positions per hashed range
EXAMPLES = 10  # findings printed per check

# Every column the primary stores, as one text per row, the same on both servers
# (both sessions run in UTC, and jsonb prints canonically).
ROW_TEXT = """concat_ws('|', position, id, stream, version, type, store, sku, data::text,
    metadata::text, occurred_at, recorded_at)"""


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


def _connect(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _scope(store: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition on events that limits a check to one store (or none)."""
    return (" AND store = %s", (store,)) if store else ("", ())


def _stream_scope(store: str | None) -> tuple[str, tuple[Any, ...]]:
    """The condition on streams for one store: those with an event of the store."""
    if not store:
        return "", ()
    return " AND stream IN (SELECT stream FROM events WHERE store = %s)", (store,)


def check_versions(primary: psycopg.Connection[Any], store: str | None) -> Check:
    """Versions 1..n per stream, and `streams.version` = n."""
    check = Check("versions", what="streams")
    where, params = _scope(store)
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
    primary_url: str, store: str | None, progress: Progress | None = None
) -> tuple[Check, Check]:
    """Every event decodes; every domain stream's fold equals its stored state."""
    decodes = Check("events", what="events")
    states = Check("states", what="streams")
    codec = Codec((*ALL_EVENTS, *IDENTITY_EVENTS))
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
        heads = StoredStates(iter(stored))
        current: str | None = None
        state: Any = None
        for stream, version, type_, data in events:
            if stream != current:
                if current is not None and state is not None:
                    _compare(states, current, state, heads)
                current, state = stream, _initial(stream)
            decodes.checked += 1
            if progress is not None and decodes.checked % 1000 == 0:
                progress(1000)
            try:
                event = codec.decode(type_, data)
            except (UnknownEventType, msgspec.ValidationError, msgspec.DecodeError) as error:
                decodes.problem(f"{stream} v{version} ({type_}): {error}")
                state = None  # no fold past an event that cannot be read
                continue
            if state is not None and isinstance(event, Event):
                state = evolve(state, event)
            elif state is not None:
                decodes.problem(f"{stream} v{version} ({type_}): not a stock-domain event")
        if current is not None and state is not None:
            _compare(states, current, state, heads)
        if progress is not None and decodes.checked % 1000:
            progress(decodes.checked % 1000)  # the bar ends at 100%
        conn.rollback()
    return decodes, states


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


def _compare(check: Check, stream: str, folded: Any, stored: StoredStates) -> None:
    check.checked += 1
    found, text = stored.state_of(stream)
    if not found:
        check.problem(f"{stream}: has events but no stored state")
    elif decode_state(stream, text) != folded:
        check.problem(f"{stream}: the stored state is not the fold of its events")


def _hashes(
    conn: psycopg.Connection[Any], low: int, high: int, store: str | None
) -> tuple[int, str | None]:
    where, params = _scope(store)
    row = conn.execute(
        f"SELECT count(*), md5(string_agg({ROW_TEXT}, E'\\n' ORDER BY position)) FROM events"
        f" WHERE position BETWEEN %s AND %s {where}",
        (low, high, *params),
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def _row_hashes(
    conn: psycopg.Connection[Any], low: int, high: int, store: str | None
) -> dict[int, str]:
    where, params = _scope(store)
    rows = conn.execute(
        f"SELECT position, md5({ROW_TEXT}) FROM events WHERE position BETWEEN %s AND %s {where}",
        (low, high, *params),
    ).fetchall()
    return {int(position): digest for position, digest in rows}


def check_replica(
    primary: psycopg.Connection[Any],
    replica: psycopg.Connection[Any],
    store: str | None,
    wait: float,
) -> Check:
    """The replica's copy equals the primary's events up to the primary's head now."""
    check = Check("replica", what="events")
    where, params = _scope(store)
    span = primary.execute(
        f"SELECT min(position), max(position) FROM events WHERE true {where}", params
    ).fetchone()
    first, head = (span[0] or 1, span[1] or 0) if span else (1, 0)
    deadline = time.monotonic() + wait
    for low in range(first, head + 1, CHUNK):
        high = min(low + CHUNK - 1, head)
        while True:
            ours = _hashes(primary, low, high, store)
            if ours == _hashes(replica, low, high, store):
                break
            if time.monotonic() >= deadline:
                _explain(check, primary, replica, (low, high), store)
                break
            time.sleep(0.2)  # replication may not have applied this range yet
        check.checked += ours[0]
    return check


def _explain(
    check: Check,
    primary: psycopg.Connection[Any],
    replica: psycopg.Connection[Any],
    positions: tuple[int, int],
    store: str | None,
) -> None:
    low, high = positions
    ours, theirs = _row_hashes(primary, low, high, store), _row_hashes(replica, low, high, store)
    for position in sorted(ours.keys() | theirs.keys()):
        if position not in theirs:
            check.problem(f"position {position}: missing on the replica")
        elif position not in ours:
            check.problem(f"position {position}: on the replica only")
        elif ours[position] != theirs[position]:
            check.problem(f"position {position}: differs on the replica")


def check_order(replica: psycopg.Connection[Any], store: str | None) -> Check:
    """On the replica, a stream's later version never has the lower `seq`."""
    check = Check("order", what="events")
    where, params = _scope(store)
    rows = replica.execute(
        f"""
        SELECT stream, version, seq, count(*) OVER () AS total FROM (
            SELECT stream, version, seq,
                   lag(version) OVER (PARTITION BY stream ORDER BY seq) AS previous
            FROM events WHERE true {where}
        ) AS e WHERE previous > version ORDER BY seq LIMIT {EXAMPLES}
        """,
        params,
    ).fetchall()
    counted = replica.execute(f"SELECT count(*) FROM events WHERE true {where}", params)
    check.checked = int((counted.fetchone() or (0,))[0])
    if rows:
        check.problems = int(rows[0][3])
        check.findings = [
            f"{s}: version {v} has seq {q}, after a later version" for s, v, q, _ in rows
        ]
    return check


def check_stalls(replica: psycopg.Connection[Any], store: str | None) -> Check:
    """No projector is stalled at an event it cannot apply (in `store`, or anywhere)."""
    check = Check("stalls", what="projector partitions")
    row = replica.execute(
        "SELECT count(*) FROM projector_checkpoints WHERE %(store)s::text IS NULL"
        " OR partition = %(store)s",
        {"store": store},
    ).fetchone()
    check.checked = int(row[0]) if row else 0
    for stall in stalls.live(replica, store):
        since = f"{stall.first_failed_at:%Y-%m-%d %H:%M:%S}Z" if stall.first_failed_at else "?"
        check.problem(f"{stall.describe()} (since {since}, {stall.attempts} attempts)")
    return check


def verify(
    primary_url: str,
    replica_url: str,
    *,
    store: str | None = None,
    wait: float = 10.0,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run every check, print the report; 0 when the history is whole and no projector
    is stalled, 1 otherwise."""
    started = time.monotonic()
    with _connect(primary_url) as primary, _connect(replica_url) as replica:
        where, params = _scope(store)
        total_row = primary.execute(f"SELECT count(*) FROM events WHERE true {where}", params)
        total = int((total_row.fetchone() or (0,))[0])
        checks = [check_versions(primary, store)]
        progress = Progress(total, err)
        decodes, states = check_states(primary_url, store, progress)
        print(file=err)
        checks += [decodes, states, check_replica(primary, replica, store, wait)]
        checks += [check_order(replica, store), check_stalls(replica, store)]
    scope = f"store {store}" if store else "every store"
    print(f"inventory audit verify: {scope}, {total:,} events on the primary", file=out)
    for check in checks:
        verdict = "ok" if check.ok else f"FAILED ({check.problems:,})"
        print(f"  {check.name:<9} {verdict:<14} {check.checked:,} {check.what} checked", file=out)
        for finding in check.findings:
            print(f"      {finding}", file=out)
        if check.problems > len(check.findings):
            print(f"      ... and {check.problems - len(check.findings):,} more", file=out)
    elapsed = time.monotonic() - started
    if all(check.ok for check in checks):
        print(f"verified in {elapsed:.1f} s: the history is whole", file=out)
        return 0
    print(f"NOT verified ({elapsed:.1f} s): see the findings above", file=out)
    return 1
