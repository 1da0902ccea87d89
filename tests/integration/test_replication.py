"""Logical replication under a steady load: every committed event reaches the replica, in
commit order (how fast is bench/'s business, not an assertion's)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg

from inventory.runtime.settings import Settings
from tests.projection_helpers import append_counted, new_stream

RATE = 1000  # events per second offered, one event per append
SECONDS = 5
WRITERS = 16  # connections; each owns its streams, so appends never wait on each other
STREAMS_PER_WRITER = 5
# How long the replica may take to show every event before the test gives up: a bound on
# the wait, far above the 100-400 ms lags seen here (the test servers commit with
# synchronous_commit = off, so the walsender sees a commit when the WAL writer flushes it).
PATIENCE = 30
POLL = 0.005


@dataclass
class Observed:
    """What the replica showed, as the observer thread saw it."""

    seen: dict[int, tuple[int, str, int]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def observe(replica_url: str, partition: str, into: Observed) -> None:
    """Poll the replica's events copy for the partition's new rows, noting each one's seq."""
    last_seq = 0
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while True:
            stopping = into.stop.is_set()
            rows = conn.execute(
                "SELECT position, seq, stream, version FROM events"
                " WHERE partition = %s AND seq > %s ORDER BY seq",
                (partition, last_seq),
            ).fetchall()
            for position, seq, stream, version in rows:
                into.seen[position] = (seq, stream, version)
            if rows:
                last_seq = rows[-1][1]
            if stopping:
                return
            time.sleep(POLL)


async def write(
    settings: Settings, partition: str, writer: int, started: float, commits: set[int]
) -> list[int]:
    """Append this writer's share of the schedule (event i is due at started + i / RATE),
    each in its own commit; returns its positions in commit order."""
    streams = [new_stream(partition) for _ in range(STREAMS_PER_WRITER)]
    positions = []
    async with await psycopg.AsyncConnection.connect(settings.primary_url, autocommit=True) as conn:
        for number, i in enumerate(range(writer, RATE * SECONDS, WRITERS)):
            delay = started + i / RATE - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            [position] = await append_counted(conn, streams[number % len(streams)], partition)
            commits.add(position)
            positions.append(position)
    return positions


async def test_a_steady_1000_events_per_second_all_reach_the_replica_in_commit_order(
    settings: Settings, store_id: str
) -> None:
    observed = Observed()
    observer = threading.Thread(target=observe, args=(settings.replica_url, store_id, observed))
    observer.start()
    commits: set[int] = set()
    try:
        started = time.monotonic() + 0.1
        by_writer = await asyncio.gather(
            *(write(settings, store_id, w, started, commits) for w in range(WRITERS))
        )
        deadline = time.monotonic() + PATIENCE
        while len(observed.seen) < len(commits) and time.monotonic() < deadline:
            time.sleep(0.05)  # nothing else runs on this loop now
    finally:
        observed.stop.set()
        observer.join()

    assert len(commits) == RATE * SECONDS
    missing = commits - set(observed.seen)
    assert not missing, f"{len(missing)} events had not reached the replica after {PATIENCE} s"

    # In order: each writer's commits got increasing seqs, and in seq order every stream's
    # versions run 1, 2, 3, ... without a gap.
    for positions in by_writer:
        seqs = [observed.seen[p][0] for p in positions]
        assert seqs == sorted(seqs)
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version in sorted(observed.seen.values()):
        versions[stream].append(version)
    assert all(v == list(range(1, len(v) + 1)) for v in versions.values())
