"""The worker's rounds: several partitions at once, and one store's failure stops only it,
at the event it cannot apply, recorded as a stall."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from inventory.projectors import stalls
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.settings import Settings
from inventory.wiring import build_worker
from tests.projection_helpers import checkpoint_of, receive_stock

# Far above any position the primary hands out in a test session.
POISON_POSITION = 9_000_000_000_000_000_000


@pytest.fixture
def poisoned(settings: Settings) -> Iterator[str]:
    """A store whose only event (written into the events copy as replication would) cannot
    be decoded, removed again afterwards."""
    store = f"s{uuid.uuid4().hex[:10]}"
    position = POISON_POSITION + uuid.uuid4().int % 1_000_000
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO events (position, id, stream, version, type, store, sku, data,"
            " metadata, occurred_at, recorded_at)"
            " VALUES (%s, gen_random_uuid(), %s, 1, 'stock.received', %s, 'SKU', '{}', '{}',"
            " now(), now())",
            (position, f"stock-{store}-SKU", store),
        )
    yield store
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM events WHERE position = %s", (position,))
        conn.execute("DELETE FROM projector_checkpoints WHERE partition = %s", (store,))
        conn.execute("DELETE FROM stream_heads WHERE partition = %s", (store,))
        conn.execute("DELETE FROM projection_stalls WHERE partition = %s", (store,))


async def test_a_store_whose_round_fails_holds_up_no_other_store_of_the_round(
    settings: Settings, poisoned: str
) -> None:
    healthy, other = (f"s{uuid.uuid4().hex[:10]}" for _ in range(2))
    urls = settings.primary_url, settings.replica_url
    seqs = {healthy: await receive_stock(*urls, healthy, 3)}
    # The broker is built before the actors bind to one, as in the worker.
    with build_worker(settings) as context:
        from inventory.worker import actors

        actors.serve(context, [poisoned, healthy])  # contained: nothing raised for the message
        seqs[healthy] += await receive_stock(*urls, healthy, 2)
        seqs[other] = await receive_stock(*urls, other, 2)
        actors.serve(context, [healthy, other, poisoned])  # still stalled, the others go on

    for store, store_seqs in seqs.items():
        for projector in PROJECTORS:
            assert checkpoint_of(settings.replica_url, store, projector.name) == store_seqs[-1]
    assert checkpoint_of(settings.replica_url, poisoned, "stock") == 0
    with psycopg.connect(settings.replica_url) as conn:
        (poison_seq,) = conn.execute(
            "SELECT seq FROM events WHERE partition = %s", (poisoned,)
        ).fetchone() or (0,)
        found = {stall.projector: stall for stall in stalls.live(conn, poisoned)}
    # The projectors that decode stock events stop at it; stream_heads went past it.
    assert set(found) == {"stock", "daily_movements"}
    assert checkpoint_of(settings.replica_url, poisoned, "stream_heads") == poison_seq
    for stall in found.values():
        assert (stall.partition, stall.seq, stall.event_type) == (
            poisoned,
            poison_seq,
            "stock.received",
        )
        assert stall.stream == f"stock-{poisoned}-SKU"
        assert stall.error_class == "msgspec.ValidationError"
        assert stall.attempts >= 1
