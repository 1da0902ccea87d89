"""The feed's publisher: several partitions in one transaction, each to its own channel."""

from __future__ import annotations

import time
import uuid
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from inventory.feed import messages
from inventory.feed.publisher import publish_partitions
from inventory.projectors.catch_up import catch_up_partitions
from inventory.readmodels import feed_publication
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.settings import Settings
from tests.projection_helpers import receive_stock


def _received(subscriber: Any, expected: int) -> list[tuple[str, messages.Bundle]]:
    """(channel, bundle) of the next `expected` messages, within 10 s."""
    found: list[tuple[str, messages.Bundle]] = []
    deadline = time.monotonic() + 10
    while len(found) < expected and time.monotonic() < deadline:
        message = subscriber.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            bundle = messages.BUNDLE_DECODER.decode(message["data"])
            found.append((message["channel"].decode(), bundle))
    return found


async def test_one_publish_sends_each_partition_its_events_in_order_once(
    settings: Settings,
) -> None:
    first, second = (f"s{uuid.uuid4().hex[:10]}" for _ in range(2))
    urls = settings.primary_url, settings.replica_url
    seqs = {
        first: await receive_stock(*urls, first, 3),
        second: await receive_stock(*urls, second, 2),
    }
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.redis_url)
    subscriber = client.pubsub()
    subscriber.subscribe(*(messages.channel(namespace, store) for store in seqs))
    with ConnectionPool(settings.replica_url, min_size=1, max_size=1) as pool:
        with pool.connection() as conn:
            catch_up_partitions(conn, PROJECTORS, [first, second])
            assert publish_partitions(conn, client, namespace, [second, "", first]) == 5
            assert publish_partitions(conn, client, namespace, [first, second]) == 0
            cursors = dict(
                conn.execute(
                    "SELECT partition, seq FROM feed_published WHERE partition = ANY(%s)",
                    ([first, second],),
                ).fetchall()
            )

    received = _received(subscriber, 5)
    subscriber.close()
    client.close()
    for store, store_seqs in seqs.items():
        bundles = [b for channel, b in received if channel == messages.channel(namespace, store)]
        assert [b.seq for b in bundles] == store_seqs
        assert [b.prev_seq for b in bundles] == [0, *store_seqs[:-1]]
        assert {b.store for b in bundles} == {store}
        assert cursors[store] == store_seqs[-1]
    assert len(received) == 5


async def test_the_sweep_finds_exactly_the_stores_with_projected_events_not_yet_published(
    settings: Settings,
) -> None:
    published, behind, unprojected = (f"s{uuid.uuid4().hex[:10]}" for _ in range(3))
    urls = settings.primary_url, settings.replica_url
    for store in (published, behind, unprojected):
        await receive_stock(*urls, store, 2)
    client = redis.Redis.from_url(settings.redis_url)
    with ConnectionPool(settings.replica_url, min_size=1, max_size=1) as pool:
        with pool.connection() as conn:
            catch_up_partitions(conn, PROJECTORS, [published, behind])
            publish_partitions(conn, client, f"test-{uuid.uuid4().hex[:8]}", [published])
            with conn.cursor() as cur:
                found = feed_publication.unpublished(cur)
    client.close()

    assert behind in found
    assert published not in found  # every projected event sent
    assert unprojected not in found  # nothing the read models hold yet
    assert "" not in found  # events of no store have no feed
    assert found == sorted(found)
