"""Connections that fall behind the live feed catch up in order, each event once, and
rejoin it: a backlog read while live events overflow a small queue, a resume from the
middle, and a connection in step beside them; real API processes and WebSocket clients."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import ApiServer, api_key
from tests.e2e.feed_helpers import (
    FeedClient,
    FeedWorld,
    feed_world,
    partition_seqs,
    wait_projected,
)

pytestmark = pytest.mark.e2e

QUEUE = 10  # messages (a history of 20): live events during a backlog read overflow it


@pytest.fixture(scope="module")
def world(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeedWorld]:
    admin = api_key(settings, Role.ADMIN, ["*"], "feed catch-up admin")
    folder = Path(tmp_path_factory.mktemp("feed-catch-up"))
    with feed_world(server_env, settings, folder, admin) as built:
        yield built


@pytest.fixture(scope="module")
def small_queue(world: FeedWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    env = {**world.apis[0].env, "INVENTORY_FEED_QUEUE_SIZE": str(QUEUE)}
    server = ApiServer(env, Path(tmp_path_factory.mktemp("small-queue")) / "api.log")
    try:
        server.wait_live()
        yield server
    finally:
        server.stop()


def metric(api: ApiServer, name: str) -> float:
    for line in httpx.get(f"{api.base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_connections_behind_the_live_feed_catch_up_in_order_without_loss_or_repeat(
    world: FeedWorld, settings: Settings, small_queue: ApiServer
) -> None:
    store = f"c{uuid.uuid4().hex[:10]}"
    world.open_store(store)
    for _ in range(3):
        world.receive(store, world.products)
    backlog = wait_projected(settings, store, 301)
    url = f"ws://127.0.0.1:{small_queue.port}/v1/feed?stores={store}"
    in_step = await FeedClient.connect(f"{url}&after={backlog[-1]}", world.admin_key)
    await asyncio.sleep(0.3)

    # Live events flow while connections read the whole backlog and another resumes from
    # its middle: their queues may overflow while they still read (printed below).
    live = asyncio.create_task(asyncio.to_thread(_receipts, world, store, 5))
    await asyncio.to_thread(wait_projected, settings, store, 351)
    behind = [await FeedClient.connect(f"{url}&after=0", world.admin_key) for _ in range(8)]
    resumed = await FeedClient.connect(f"{url}&after={backlog[150]}", world.admin_key)
    await live
    everything = wait_projected(settings, store, 801)
    clients = [in_step, *behind, resumed]
    for client in clients:
        await client.until(lambda c: c.seqs()[-1:] == everything[-1:], 60)
        await client.quiet(0.5)
        await client.close()

    print(  # noqa: T201 - which catch-up paths the run took (no timing assertion)
        "queue resyncs",
        metric(small_queue, "inventory_feed_queue_resyncs_total"),
        "gap resyncs",
        metric(small_queue, "inventory_feed_resyncs_total"),
        "direct",
        metric(small_queue, "inventory_feed_direct_deliveries_total"),
    )
    assert everything == partition_seqs(settings, store)
    assert in_step.seqs() == everything[301:]
    assert [client.seqs() for client in behind] == [everything] * len(behind)
    assert resumed.seqs() == everything[151:]
    assert {m["kind"] for c in clients for m in c.others} <= {"heartbeat"}


def _receipts(world: FeedWorld, store: str, count: int) -> None:
    for _ in range(count):
        world.receive(store, world.products)
