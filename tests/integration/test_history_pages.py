"""History pages filtered by event type across every store: the type's events, in seq
order, through the (type, seq) index."""

from __future__ import annotations

import psycopg

from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.readmodels.history import EventFilter, page, page_query
from inventory.runtime.resources import Resources
from inventory.runtime.settings import Settings
from tests.events import Counted, Noted
from tests.projection_helpers import new_stream, store, wait_replicated

RARE = "test.noted"


async def test_a_type_filter_pages_through_exactly_that_types_events(
    resources: Resources, settings: Settings, store_id: str
) -> None:
    with psycopg.connect(settings.replica_url) as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    start = row[0] if row else 0
    events = [
        NewEvent(Noted(text=str(i)) if i % 9 == 0 else Counted(value=i), store=partition)
        for i in range(90)
        for partition in (store_id, None)
    ]
    async with resources.primary.connection() as conn:
        recorded = await store.append(conn, [StreamWrite(new_stream(store_id), events)])
    wait_replicated(settings.replica_url, [r.position for r in recorded])

    stream = recorded[0].stream
    found, after = [], start
    async with resources.replica.connection() as conn:
        while rows := await page(conn, EventFilter(None, None, RARE), after, 7):
            found += [(r[0], r[4]) for r in rows]
            after = rows[-1][0]
        cur = await conn.execute(
            "SELECT seq, type, stream FROM events WHERE seq > %s ORDER BY seq", (start,)
        )
        copied = await cur.fetchall()
    # Events of earlier tests may still be arriving: compare up to this test's last one.
    last = max(seq for seq, _, name in copied if name == stream)
    expected = [(seq, type_) for seq, type_, _ in copied if type_ == RARE and seq <= last]
    ours = [seq for seq, type_, name in copied if type_ == RARE and name == stream]

    assert [hit for hit in found if hit[0] <= last] == expected and len(ours) == 20


def test_a_type_filter_across_every_store_reads_the_type_seq_index(settings: Settings) -> None:
    query = page_query(EventFilter(None, None, RARE), 0, 100)
    with psycopg.connect(settings.replica_url) as conn:
        conn.execute("SET enable_seqscan = off")  # a small test table is read whole otherwise
        plan = conn.execute(b"EXPLAIN " + query.as_bytes(conn)).fetchall()

    assert any("events_type_seq" in line for (line,) in plan), plan
