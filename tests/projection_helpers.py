"""Helpers for tests of the read side: appending, waiting for replication, reading models."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg

from inventory.domain.events import ALL_EVENTS, StockReceived
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from tests.events import TEST_EVENTS, Counted

store = EventStore(Codec(TEST_EVENTS))
stock_store = EventStore(Codec(ALL_EVENTS))


async def append_counted(
    conn: psycopg.AsyncConnection[Any], stream: str, partition: str, count: int = 1
) -> list[int]:
    """Append `count` events to `stream` in `partition`; returns their positions."""
    events = [NewEvent(Counted(value=i), store=partition) for i in range(count)]
    recorded = await store.append(conn, [StreamWrite(stream, events)])
    return [r.position for r in recorded]


def wait_replicated(replica_url: str, positions: list[int], timeout: float = 30) -> None:
    """Block until every position is in the replica's events copy."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM events WHERE position = ANY(%s)", (positions,)
            ).fetchone()
            if row is not None and row[0] == len(set(positions)):
                return
            if time.monotonic() > deadline:
                raise AssertionError("events did not reach the replica")
            time.sleep(0.02)


def heads_of(
    replica_url: str, partition: str, table: str = "stream_heads"
) -> list[tuple[Any, ...]]:
    """The stream_heads rows of one partition, sorted."""
    with psycopg.connect(replica_url) as conn:
        return conn.execute(
            f"SELECT stream, version, last_seq FROM {table} WHERE partition = %s ORDER BY stream",
            (partition,),
        ).fetchall()


def checkpoint_of(replica_url: str, partition: str, projector: str = "stream_heads") -> int:
    """The projector's checkpoint in `partition` (0 when it never ran)."""
    with psycopg.connect(replica_url) as conn:
        row = conn.execute(
            "SELECT seq FROM projector_checkpoints WHERE projector = %s AND partition = %s",
            (projector, partition),
        ).fetchone()
    return row[0] if row else 0


def new_stream(partition: str) -> str:
    """A fresh stream name in a partition."""
    return f"test-{partition}-{uuid.uuid4().hex[:8]}"


async def receive_stock(primary_url: str, replica_url: str, store_id: str, count: int) -> list[int]:
    """`count` one-event receipts of one SKU in `store_id`, replicated; their seqs."""
    positions = []
    async with await psycopg.AsyncConnection.connect(primary_url) as conn:
        for n in range(count):
            received = StockReceived(
                store_id=store_id, sku="SKU", quantity=Decimal(n + 1), occurred_at=datetime.now(UTC)
            )
            write = StreamWrite(f"stock-{store_id}-SKU", [NewEvent(received, store_id, "SKU")], ANY)
            positions += [r.position for r in await stock_store.append(conn, [write])]
    wait_replicated(replica_url, positions)
    with psycopg.connect(replica_url) as conn:
        rows = conn.execute(
            "SELECT seq FROM events WHERE position = ANY(%s) ORDER BY seq", (positions,)
        )
        return [row[0] for row in rows.fetchall()]
