"""The live feed against real API and worker processes, with a real WebSocket client."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from inventory.runtime.settings import Settings
from inventory.security.principal import Role
from tests.e2e.api_servers import api_key
from tests.e2e.feed_helpers import (
    FeedClient,
    FeedWorld,
    PlainUvicorn,
    StalledClient,
    direct_deliveries,
    feed_world,
    partition_seqs,
    wait_projected,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(
    server_env: dict[str, str], settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeedWorld]:
    admin = api_key(settings, Role.ADMIN, ["*"], "feed admin")
    folder = Path(tmp_path_factory.mktemp("feed"))
    with feed_world(server_env, settings, folder, admin) as built:
        yield built


def new_store(world: FeedWorld) -> str:
    store = f"f{uuid.uuid4().hex[:10]}"
    world.open_store(store)
    return store


def receipts(client: FeedClient) -> int:
    return sum(event["type"] == "stock.received" for event in client.events)


def last_events_once_in_order(seen: list[int], store: list[int], count: int) -> bool:
    """`seen` is the store's last `count` seqs, after its opening if the client saw it
    (without `after` a client starts at what the read models hold when it connects)."""
    return seen in (store[-count:], store[-count - 1 :])


async def test_a_client_gets_the_backlog_then_live_events_and_after_a_disconnect_exactly_the_missed(
    world: FeedWorld, settings: Settings
) -> None:
    store = new_store(world)
    skus = world.products[:3]
    world.receive(store, skus)
    backlog = wait_projected(settings, store, 4)  # the store's opening and three receipts

    client = await FeedClient.connect(world.ws_url(stores=store, after=0), world.admin_key)
    await client.until(lambda c: len(c.events) >= len(backlog))
    world.post(
        f"/v1/stores/{store}/sales",
        {"sale_id": "live-1", "lines": [{"sku": skus[0], "quantity": 2}]},
    )
    everything = wait_projected(settings, store, len(backlog) + 2)  # the sale and its item
    await client.until(lambda c: len(c.events) >= len(everything))
    await client.close()

    assert client.seqs()[: len(backlog)] == backlog
    assert client.seqs() == everything
    sold = next(e for e in client.events if e["type"] == "stock.sold")
    assert (sold["store"], sold["sku"], sold["stream"]) == (
        store,
        skus[0],
        f"stock-{store}-{skus[0]}",
    )
    assert sold["prev_seq"] == client.seqs()[client.seqs().index(sold["seq"]) - 1]

    last = client.seqs()[-1]
    before = len(partition_seqs(settings, store))
    for batch in range(5):  # 500 events while nobody listens
        world.receive(store, world.products, quantity=batch + 1)
    missed = [seq for seq in wait_projected(settings, store, before + 500) if seq > last]
    resumed = await FeedClient.connect(world.ws_url(stores=store, after=last), world.admin_key)
    await resumed.until(lambda c: len(c.events) >= 500)
    await resumed.quiet(1.5)
    await resumed.close()

    assert len(missed) == 500
    assert resumed.seqs() == missed


async def test_a_sale_through_one_api_process_reaches_feed_clients_on_both(
    world: FeedWorld,
) -> None:
    store = new_store(world)
    world.receive(store, world.products[:1])
    clients = [
        await FeedClient.connect(world.ws_url(api, stores=store), world.admin_key) for api in (0, 1)
    ]
    await asyncio.sleep(0.2)
    world.post(
        f"/v1/stores/{store}/sales",
        {"sale_id": "both", "lines": [{"sku": world.products[0], "quantity": 1}]},
        api=1,
    )

    for client in clients:
        await client.until(lambda c: any(e["type"] == "stock.sold" for e in c.events), 10)
        await client.close()
    sold = [[e["seq"] for e in c.events if e["type"] == "stock.sold"] for c in clients]
    assert sold[0] == sold[1] and len(sold[0]) == 1


async def test_a_client_that_never_reads_is_closed_with_4008_and_another_keeps_receiving(
    world: FeedWorld, settings: Settings
) -> None:
    store = new_store(world)
    slow = StalledClient(world.apis[0].port, f"/v1/feed?stores={store}", world.admin_key)
    fast = await FeedClient.connect(world.ws_url(stores=store), world.admin_key)
    # 4,000 events of ~2.4 kB: more than the kernel's socket buffers (~4 MiB) and the
    # connection's queue (1,000 messages) hold. On a thread, while the fast client reads
    # on. Large events keep this short: after 20 s + 20 s unanswered, uvicorn's keepalive
    # would close the stalled client with 1011 before its queue overflowed.
    reading = asyncio.create_task(fast.until(lambda c: receipts(c) >= 4000, 120))
    for _ in range(40):
        await asyncio.to_thread(world.receive, store, world.products, note="n" * 2000)

    await reading
    code, received = await asyncio.to_thread(slow.close_code)
    await fast.close()

    assert code == 4008
    assert received < 4000
    assert last_events_once_in_order(fast.seqs(), partition_seqs(settings, store), 4000)


async def test_unauthenticated_and_out_of_scope_subscriptions_are_refused(
    world: FeedWorld, settings: Settings
) -> None:
    own, other = new_store(world), new_store(world)
    viewer = api_key(settings, Role.VIEWER, [own], "feed viewer")
    clerk = api_key(settings, Role.CLERK, ["*"], "feed clerk")

    async def close_code(url: str, key: str | None = None) -> int | None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with websockets.connect(url, additional_headers=headers) as socket:
            try:
                await asyncio.wait_for(socket.recv(), 10)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
        return None

    assert await close_code(world.ws_url()) == 4401
    assert await close_code(world.ws_url(token="inv_nope")) == 4401
    assert await close_code(world.ws_url(stores=other), viewer) == 4403
    assert await close_code(world.ws_url(stores=f"{own},{other}"), viewer) == 4403
    assert await close_code(world.ws_url(), clerk) == 4403
    assert await close_code(world.ws_url(after="soon"), viewer) == 4400

    # Without `stores`, a scoped viewer sees its own stores only (token in the query).
    client = FeedClient(await websockets.connect(world.ws_url(token=viewer, after=0)))
    world.receive(other, world.products[:2])
    world.receive(own, world.products[:2])
    await client.until(lambda c: any(e["type"] == "stock.received" for e in c.events))
    await client.quiet(1.5)
    await client.close()
    assert {e["store"] for e in client.events} == {own}


async def test_heartbeats_carry_the_read_position(world: FeedWorld) -> None:
    store = new_store(world)
    client = await FeedClient.connect(world.ws_url(stores=store), world.admin_key)
    await client.until(lambda c: any(m["kind"] == "heartbeat" for m in c.others), 10)
    await client.close()

    beat = next(m for m in client.others if m["kind"] == "heartbeat")
    assert isinstance(beat["read_position"], int) and beat["read_position"] > 0


async def test_restarting_redis_or_the_worker_loses_no_event_for_a_client_that_resumes(
    world: FeedWorld, settings: Settings
) -> None:
    store = new_store(world)
    start = wait_projected(settings, store, 1)[-1]
    client = await FeedClient.connect(world.ws_url(stores=store, after=start), world.admin_key)

    world.redis.stop()  # events committed meanwhile cannot be published
    for _ in range(3):
        world.receive_direct(store, world.products[:10])
    world.redis.start()
    world.redis.wait_ready()
    world.receive_direct(store, world.products[:10])
    expected = wait_projected(settings, store, 41)
    await client.until(lambda c: c.seqs()[-1:] == expected[-1:], 60)
    await client.close()
    assert client.seqs() == [seq for seq in expected if seq > start]

    listening = await FeedClient.connect(
        world.ws_url(stores=store, after=expected[-1]), world.admin_key
    )
    world.worker.kill()  # the next events wait for a new worker
    world.receive(store, world.products[:10])
    world.receive_direct(store, world.products[:10])
    await asyncio.sleep(1)
    world.worker.start()
    after_restart = wait_projected(settings, store, 61)
    await listening.until(lambda c: c.seqs()[-1:] == after_restart[-1:], 60)
    await listening.close()
    assert listening.seqs() == [seq for seq in after_restart if seq > expected[-1]]


async def test_each_event_carries_the_level_after_it(world: FeedWorld, settings: Settings) -> None:
    store = new_store(world)
    sku = world.products[0]
    world.receive(store, [sku], quantity=10)
    client = await FeedClient.connect(world.ws_url(stores=store, after=0), world.admin_key)
    world.post(
        f"/v1/stores/{store}/sales", {"sale_id": "lv", "lines": [{"sku": sku, "quantity": 3}]}
    )
    await client.until(lambda c: any(e["type"] == "stock.sold" for e in c.events))
    await client.close()

    received = next(e for e in client.events if e["type"] == "stock.received")
    sold = next(e for e in client.events if e["type"] == "stock.sold")
    assert received["level"] == {"on_hand": 10, "reserved": 0, "available": 10}
    assert sold["level"] == {"on_hand": 7, "reserved": 0, "available": 7}


async def test_a_client_over_its_message_budget_is_closed_with_4429(world: FeedWorld) -> None:
    store = new_store(world)
    client = await FeedClient.connect(world.ws_url(stores=store), world.admin_key)
    for number in range(25):  # the default budget: 20 messages per 10 s
        await client.connection.send(f'{{"ping": {number}}}')

    assert await client.close_code(10) == 4429


async def test_on_inventory_serve_live_messages_take_the_direct_path_each_once_in_order(
    world: FeedWorld, settings: Settings
) -> None:
    store = new_store(world)
    api = world.apis[0]
    before = direct_deliveries(api)
    client = await FeedClient.connect(world.ws_url(stores=store), world.admin_key)
    # Frames are shared only without per-connection compression.
    assert client.connection.response is not None
    assert "Sec-WebSocket-Extensions" not in client.connection.response.headers
    reading = asyncio.create_task(client.until(lambda c: receipts(c) >= 300))
    for batch in range(3):
        await asyncio.to_thread(world.receive, store, world.products, quantity=batch + 1)
    await reading
    await client.quiet(1.5)
    await client.close()

    assert last_events_once_in_order(client.seqs(), partition_seqs(settings, store), 300)
    assert direct_deliveries(api) - before >= 300


@pytest.fixture(scope="module")
def plain_api(world: FeedWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlainUvicorn]:
    server = PlainUvicorn(world.apis[0].env, Path(tmp_path_factory.mktemp("plain")) / "api.log")
    try:
        server.wait_live()
        yield server
    finally:
        server.stop()


async def test_under_another_asgi_server_the_feed_sends_through_asgi_backlog_then_live(
    world: FeedWorld, settings: Settings, plain_api: PlainUvicorn
) -> None:
    store = new_store(world)
    world.receive(store, world.products[:5])
    backlog = wait_projected(settings, store, 6)
    url = f"ws://127.0.0.1:{plain_api.port}/v1/feed?stores={store}&after=0"
    client = await FeedClient.connect(url, world.admin_key)
    assert client.connection.response is not None
    assert "permessage-deflate" in client.connection.response.headers["Sec-WebSocket-Extensions"]
    await client.until(lambda c: len(c.events) >= len(backlog))
    reading = asyncio.create_task(client.until(lambda c: len(c.events) >= len(backlog) + 200))
    for _ in range(2):
        await asyncio.to_thread(world.receive, store, world.products)
    await reading
    await client.quiet(1.5)
    await client.close()

    assert client.seqs() == partition_seqs(settings, store)
    assert direct_deliveries(plain_api) == 0
