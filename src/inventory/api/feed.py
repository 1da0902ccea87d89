"""`GET /v1/feed`: the live feed over WebSocket (api.md, Live feed).

Admission (header, `bearer.` subprotocol or `?token=`; role, store scope, handshake
budget) is `security.websocket`'s; the close when the principal loses its rights is
`security.socket_watch`'s; delivery order and the seam between backlog and live messages are
`feed.session`'s. Here: parse the query, run the sender beside a reader that counts
inbound messages, and close with the right code when one of them ends.

When the ASGI server lends a frame writer (`inventory serve`, feed/frames.py), the sender
hands live delivery to the hub's direct path whenever it has nothing left to send, and
takes it back (`subscriber.leave_direct()`) before it sends anything itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Hashable
from typing import Any

import structlog
from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from inventory.api import integers, reads
from inventory.feed import messages
from inventory.feed.frames import frame_writer, text_frame
from inventory.feed.hub import FeedHub, Resync, Subscriber
from inventory.feed.live import Live
from inventory.feed.session import FeedSession, projected_bounds
from inventory.runtime.resources import Resources
from inventory.security.policy import RouteClass
from inventory.security.principal import Principal
from inventory.security.socket_watch import SocketWatch, Watched
from inventory.security.websocket import admit_websocket, allow_message, connection_id

log = structlog.get_logger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_TOO_SLOW = 4008
CLOSE_UNAVAILABLE = 1011


def _stores(socket: WebSocket[Any, Any, Any]) -> list[str]:
    raw = socket.query_params.get("stores") or ""
    return sorted({part for part in raw.split(",") if part})


def _after(socket: WebSocket[Any, Any, Any]) -> int | None:
    """`after` as a seq; None when absent; ValueError unless plain decimal digits of a
    bigint >= 0 (api/integers.py: no `+`, spaces, `_`, exponent or Unicode digits)."""
    raw = socket.query_params.get("after")
    if raw is None:
        return None
    value = integers.parse(raw, integers.Bounds(lowest=0))
    if value is None:
        raise ValueError(raw)
    return value


def _watched(principal: Principal, stores: list[str]) -> frozenset[str] | None:
    if stores:
        return frozenset(stores)
    return None if principal.all_stores else frozenset(principal.stores)


@websocket("/v1/feed")
async def feed(socket: WebSocket[Any, Any, Any]) -> None:
    """Every event of the watched stores after `after`, then live; heartbeats; 4008 when
    the client falls too far behind, 4429 over the message budget, 4401/4403 when the
    principal loses its rights."""
    stores = _stores(socket)
    admitted = await admit_websocket(socket, RouteClass.FEED, stores)
    if admitted is None:
        return
    principal, expires_at = admitted
    try:
        after = _after(socket)
    except ValueError:
        await socket.close(
            code=CLOSE_BAD_REQUEST, reason="after must be a seq: digits 0-9 of an integer >= 0"
        )
        return
    hub: FeedHub = socket.app.state.feed_hub
    resources: Resources = socket.app.state.resources
    watch: SocketWatch = socket.app.state.socket_watch
    subscriber = hub.subscribe(_watched(principal, stores))
    watched = watch.watch(principal, subscriber.stores, expires_at)
    try:
        await _serve(socket, resources, subscriber, after, watched)
    finally:
        watch.forget(watched)
        hub.unsubscribe(subscriber)


async def _serve(
    socket: WebSocket[Any, Any, Any],
    resources: Resources,
    subscriber: Subscriber,
    after: int | None,
    watched: Watched,
) -> None:
    writer = subscriber.writer = frame_writer(socket.scope)
    history = socket.app.state.feed_hub.history
    send = socket.send_text
    session = FeedSession(
        resources.replica, subscriber.stores, after or 0, send, writer, history=history
    )
    sender = asyncio.create_task(_send_loop(socket, resources, session, subscriber, after))
    reader = asyncio.create_task(_read_loop(socket))
    overflow = asyncio.create_task(subscriber.overflowed.wait())
    verdict: asyncio.Future[Any] = asyncio.shield(watched.verdict)
    tasks: set[asyncio.Future[Any]] = {sender, reader, overflow, verdict}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        subscriber.leave_direct()  # from here on only the close may be written
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if verdict in done:
        code, reason = verdict.result()
        log.info("feed principal lost its rights; closing", code=code)
        await _close(socket, code, reason)
    elif overflow in done:
        log.info("feed connection too slow; closing with 4008", queued=subscriber.queue.qsize())
        # Sent once the client reads again (or dropped by the server's keepalive).
        await _close(socket, CLOSE_TOO_SLOW, "too_slow: resume with after=<last seq>")
    elif sender in done and sender.exception() is not None:
        error = sender.exception()
        if not isinstance(error, WebSocketDisconnect):
            log.warning("feed connection failed", error=repr(error))
            await _close(socket, CLOSE_UNAVAILABLE, "unavailable: resume with after")


async def _close(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    # The client may have gone already; there is nobody left to tell.
    with contextlib.suppress(Exception):
        await socket.close(code=code, reason=reason)


async def _read_loop(socket: WebSocket[Any, Any, Any]) -> None:
    """Count inbound messages (they carry nothing yet); return on disconnect or 4429."""
    connection = connection_id()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await socket.receive_data(mode="text")
            if not await allow_message(socket, connection):
                return


async def _send_loop(
    socket: WebSocket[Any, Any, Any],
    resources: Resources,
    session: FeedSession,
    subscriber: Subscriber,
    after: int | None,
) -> None:
    """Backlog, then live messages in order, a heartbeat at least every interval."""
    if after is None:
        await session.start_at_now()
    await session.catch_up()
    interval = resources.settings.feed_heartbeat_seconds
    loop = asyncio.get_running_loop()
    beat_at = loop.time() + interval
    sent_at_beat = dict(session.last_sent)
    while True:
        if session.writer is not None and subscriber.queue.empty():
            # Everything is sent and the dispatch sees each message before anyone else:
            # it may write the next ones itself (it clears this on a gap or a resync).
            subscriber.direct = session.direct
        try:
            item = await asyncio.wait_for(subscriber.queue.get(), max(beat_at - loop.time(), 0))
        except TimeoutError:
            await _heartbeat(socket, resources, session, subscriber, sent_at_beat)
            beat_at = loop.time() + interval
            sent_at_beat = dict(session.last_sent)
            continue
        await _deliver(session, [item, *_rest(subscriber)])


def _rest(subscriber: Subscriber) -> list[Live | Resync]:
    """Everything else queued now: a connection behind catches up in few, large writes."""
    queue = subscriber.queue
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def _deliver(session: FeedSession, items: list[Live | Resync]) -> None:
    """Send queued items in order: with a frame writer, the live messages between two
    resyncs in one write; without, message by message through ASGI."""
    lives: list[Live] = []
    for item in items:
        if isinstance(item, Resync):
            await _deliver_lives(session, lives)
            lives = []
            await session.catch_up()
        else:
            lives.append(item)
    await _deliver_lives(session, lives)


async def _deliver_lives(session: FeedSession, lives: list[Live]) -> None:
    if session.writer is not None:
        await session.write_all(lives)
        return
    for live in lives:
        await session.deliver(live)


async def _heartbeat(
    socket: WebSocket[Any, Any, Any],
    resources: Resources,
    session: FeedSession,
    subscriber: Subscriber,
    sent_at_last: dict[str, int],
) -> None:
    """The heartbeat; after a quiet spell, first a look at the replica in case a message
    never came (while messages flow, a lost one shows as a gap in the next one's
    `prev_seq`, so a busy connection does not query the replica every interval)."""
    hub: FeedHub = socket.app.state.feed_hub
    if session.last_sent == sent_at_last and session.behind(
        await _shared(
            hub, ("bounds", session.stores), projected_bounds(resources.replica, session.stores)
        )
    ):
        subscriber.leave_direct()  # what follows is sent from here
        await session.catch_up(replica=True)  # the hub's history lacks a lost message too
    # Read while live messages still go out directly.
    position = await _position(resources, hub, session.stores)
    beat = {"kind": "heartbeat", "read_position": position}
    if session.writer is None:
        subscriber.leave_direct()
        await socket.send_json(beat)
        return
    # After the frames the hub has pending, and without leaving the direct path: a
    # heartbeat through ASGI would queue every message that arrives meanwhile.
    subscriber.flush()
    session.writer.write(text_frame(messages.encode(beat)))


async def _position(resources: Resources, hub: FeedHub, stores: frozenset[str] | None) -> int:
    store = next(iter(stores)) if stores is not None and len(stores) == 1 else None
    position: int = await _shared(hub, store, reads.read_position(resources.replica, store))
    return position


async def _shared(hub: FeedHub, key: Hashable, read: Coroutine[Any, Any, Any]) -> Any:
    """`read`'s answer, or that of the same read already under way: connections whose
    heartbeats fall due together (they connected together) share one replica query."""
    task = hub.reading.get(key)
    if task is None:
        task = asyncio.create_task(read)
        hub.reading[key] = task
        task.add_done_callback(lambda _: hub.reading.pop(key, None))
    else:
        read.close()  # not needed: never awaited
    # Shielded: one connection going away must not cancel the others' read.
    return await asyncio.shield(task)
