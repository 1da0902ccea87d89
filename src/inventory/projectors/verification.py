"""The audit's questions about the replica, answered against the primary and the engine.

- **replica**: is the replica's events copy the primary's events, row for row (compared
  by hashes of position ranges computed on each server, then row by row where they
  differ)?
- **order**: on the replica, does `seq` (the cursor of projectors and the feed) follow
  each stream's versions?
- **stalls**: is every projector able to go on, or is one stopped at an event of a
  store it cannot apply (projectors/stalls.py)? The history is whole either way, but a
  stalled store's read models stay behind it until a fix ships.

The primary keeps taking commands meanwhile: events appended after the check began are
not compared, and a range that differs only because the replica has not applied it yet
is compared again until `wait` seconds have passed.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from inventory.eventstore.verification import EXAMPLES, Check, scope
from inventory.projectors import stalls

CHUNK = 50_000  # positions per hashed range

# Every column the primary stores, as one text per row, the same on both servers
# (both sessions run in UTC, and jsonb prints canonically).
ROW_TEXT = """concat_ws('|', position, id, stream, version, type, store, sku, data::text,
    metadata::text, occurred_at, recorded_at)"""


def _hashes(
    conn: psycopg.Connection[Any], low: int, high: int, store: str | None
) -> tuple[int, str | None]:
    where, params = scope(store)
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
    where, params = scope(store)
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
    where, params = scope(store)
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
    where, params = scope(store)
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
