"""The API process's one Redis subscription, fanned out to its feed connections.

Each process subscribes once to every store's channel (a pattern). The messages of a
tick are joined per store into chains (each one's `prev_seq` the seq of the one before)
and each connection watching the store is offered each chain once. One in step (nothing
queued, no gap, its transport below its high-water mark) has the chain's frames, built
once for everyone, written to its transport from here, one write per tick; any other
gets the messages through a bounded queue, sent by its own task. A tick lasts from
FLUSH_SECONDS to FLUSH_MAX, longer as its work grows: under load, fewer and larger
writes. The hub keeps each store's latest messages (`History`), from which a connection
that fell behind catches up. A connection whose queue is full while its client still
reads drops the queue and catches up instead; one whose client stopped reading is marked
overflowed (its handler closes it with 4008); nobody else waits for either. Redis pub/sub
keeps no history, so after every (re)subscription each connection is told to resync from
the replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from inventory.feed import messages
from inventory.feed.frames import FrameWriter
from inventory.feed.live import History, Live, chains

log = structlog.get_logger(__name__)

# Messages wait at least this long to be handed out together (one offer and one system
# call per connection for every message of the tick instead of one per message) ...
FLUSH_SECONDS = 0.01
# ... and under load up to TICK_SHARE times as long as the last tick's work took, at most
# FLUSH_MAX: the fan-out then takes at most about 1 / (1 + TICK_SHARE) of the process.
TICK_SHARE = 3.0
FLUSH_MAX = 0.1

DIRECT_DELIVERIES = Counter(
    "inventory_feed_direct_deliveries",
    "Live messages handed to a connection by the hub's direct path (a frame written to "
    "its transport, or dropped as already sent), not through its queue.",
)

CONNECTIONS = Gauge("inventory_feed_connections", "Feed WebSockets this process serves now")
MESSAGES = Counter(
    "inventory_feed_messages", "Live messages this process received from Redis to fan out"
)
OVERFLOWS = Counter(
    "inventory_feed_overflows",
    "Feed connections whose queue filled (a consumer too slow): closed with 4008, to resync",
)
RELIEVED = Counter(
    "inventory_feed_queue_resyncs",
    "Feed connections whose queue filled while their client still read: the queue was "
    "dropped and the connection reread the replica in pages instead",
)
SUBSCRIBED = Gauge(
    "inventory_feed_subscribed", "1 while this process's Redis subscription for the feed is up"
)
SUBSCRIPTION_LOSSES = Counter(
    "inventory_feed_subscription_losses",
    "Times this process's Redis subscription for the feed broke (every connection resyncs)",
)


class Resync:
    """A queue item: messages may have been lost; read the replica after what was sent."""


RESYNC = Resync()

# The frames to write for `live` now (b"" when already sent); None when it must go
# through the queue (a message is missing before it, or the connection's transport is
# over its high-water mark and the sender must wait for it to drain).
Direct = Callable[[Live], bytes | None]


@dataclass(eq=False)
class Subscriber:
    """One connection's view of the hub: what it watches, its bounded queue, and while it
    is in step, its direct path."""

    stores: frozenset[str] | None  # None: every store
    queue: asyncio.Queue[Live | Resync]
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)
    # Set by the connection's task only when it has sent everything it had (its queue is
    # empty); cleared (`leave_direct`) here as soon as anything must be queued, and by the
    # task before it sends anything itself; leaving writes what is pending first. So the
    # two paths never interleave on the wire.
    direct: Direct | None = None
    writer: FrameWriter | None = None
    pending: list[bytes] = field(default_factory=list)  # direct frames not yet written

    def watches(self, store: str) -> bool:
        """Whether messages of `store` are this connection's business."""
        return self.stores is None or store in self.stores

    def offer(self, item: Live | Resync) -> bool:
        """Take directly (True) or queue, without waiting; a full queue marks the
        connection overflowed."""
        if self.overflowed.is_set():
            return False
        if self.direct is not None and isinstance(item, Live):
            frames = self.direct(item)
            if frames is not None:
                if frames:
                    self.pending.append(frames)
                return True
        self.leave_direct()
        # The queue holds single messages: its bound counts messages, not chains.
        for one in item.each() if isinstance(item, Live) else (item,):
            try:
                self.queue.put_nowait(one)
            except asyncio.QueueFull:
                self._full()
                break
        return False

    def _full(self) -> None:
        """The queue is full. A client still reading (its transport has room) waits only
        on this process: its task rereads the replica from what it sent, in pages, instead
        (what the queue held and what did not fit is there). One that stopped reading is
        too slow: 4008."""
        if self.writer is not None and self.writer.writable():
            RELIEVED.inc()
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)
            return
        self.overflowed.set()
        OVERFLOWS.inc()

    def flush(self) -> None:
        """Write the pending frames in one go."""
        if self.pending:
            assert self.writer is not None
            self.writer.write(b"".join(self.pending))
            self.pending.clear()

    def leave_direct(self) -> None:
        """Write what is pending; from now on the connection's task sends."""
        self.direct = None
        self.flush()


class FeedHub:
    """Subscribes to Redis for the whole process and dispatches to its subscribers."""

    def __init__(
        self, connect: Callable[[], aioredis.Redis], namespace: str, queue_size: int
    ) -> None:
        # A new client per subscription: after a Redis (or Sentinel) failover the next
        # one reaches the new master.
        self.connect = connect
        self.pattern = messages.channel_pattern(namespace)
        self.queue_size = queue_size
        self.subscribers: set[Subscriber] = set()
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flush: asyncio.TimerHandle | None = None
        self.arrived: list[Live] = []  # messages of the coming tick, in order
        # Twice a queue: a connection whose queue filled catches up from here.
        self.history = History(2 * queue_size)
        self.tick = FLUSH_SECONDS
        # Replica reads under way for heartbeats, shared by the connections that need the
        # same one (api/feed.py).
        self.reading: dict[Hashable, asyncio.Task[Any]] = {}

    def subscribe(self, stores: frozenset[str] | None) -> Subscriber:
        """A new subscriber; from now on it receives every message of its stores."""
        subscriber = Subscriber(stores, asyncio.Queue(self.queue_size))
        self.subscribers.add(subscriber)
        CONNECTIONS.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop dispatching to `subscriber`."""
        subscriber.direct = None
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)
            CONNECTIONS.dec()

    def start(self) -> None:
        """Run the subscription in the background until `stop`."""
        self._task = asyncio.create_task(self._run(), name="feed-hub")

    async def stop(self) -> None:
        """Cancel the subscription task and wait for it."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            SUBSCRIBED.set(0)

    def dispatch(self, data: bytes) -> None:
        """Take one Redis message for the coming tick, which hands it to every subscriber
        watching its store."""
        try:
            live = Live.of(messages.BUNDLE_DECODER.decode(data))
        except msgspec.DecodeError:
            log.warning("feed message not understood; ignored", size=len(data))
            return
        MESSAGES.inc()
        self.arrived.append(live)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self.tick, self._tick)

    def _tick(self) -> None:
        """Offer the tick's chains to the subscribers, then write what each took."""
        self._flush = None
        started = time.perf_counter()
        arrived, self.arrived = self.arrived, []
        direct = 0
        for live in chains(arrived):
            self.history.add(live)
            for subscriber in list(self.subscribers):
                if subscriber.watches(live.store):
                    direct += len(live.each()) if subscriber.offer(live) else 0
        for subscriber in self.subscribers:
            subscriber.flush()
        DIRECT_DELIVERIES.inc(direct)
        took = time.perf_counter() - started
        self.tick = min(FLUSH_MAX, max(FLUSH_SECONDS, took * TICK_SHARE))

    def _resync_all(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.offer(RESYNC)

    async def _run(self) -> None:
        pause = 0.1
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as error:
                log.warning("feed subscription lost; reconnecting", error=str(error))
            SUBSCRIBED.set(0)
            self.history.clear()
            if self.subscribed.is_set():
                SUBSCRIPTION_LOSSES.inc()
                pause = 0.1  # it had worked: retry promptly
            self.subscribed.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _listen(self) -> None:
        client = self.connect()
        try:
            async with client.pubsub() as pubsub:
                await pubsub.psubscribe(self.pattern)
                async for message in pubsub.listen():
                    self._handle(message)
                    # A burst arrives already buffered and would be dispatched without a
                    # pause: let the senders drain their queues between messages, so only
                    # a connection that cannot keep up ever fills its queue.
                    await asyncio.sleep(0)
        finally:
            await client.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "pmessage":
            self.dispatch(message["data"])
        elif message["type"] == "psubscribe":
            # Only once Redis confirms the subscription is every later publish ours:
            # what was published before it, connections now read from the replica.
            self.subscribed.set()
            SUBSCRIBED.set(1)
            self.history.clear()  # what came before may have gaps nobody can see
            self._resync_all()
            log.info("feed subscribed", pattern=self.pattern)
