"""Open WebSockets follow their principal's rights, in every API process (api.md, Identity).

Each process keeps its open sockets' principals here and re-checks them all against the
primary (two queries, whatever the number of sockets) when another process announces an
identity change on Redis (security/changes.py) and, whatever Redis does, every
RECHECK_SECONDS; the same announcement empties the process's principal cache
(security/context.py). A socket whose key is revoked, whose user is gone or disabled, whose
user's password changed since its token was issued, or whose token has expired is told
to close with 4401; one whose principal may no longer watch what it watches (a narrower
scope or another role) with 4403.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
import structlog
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisError

from inventory.security.policy import RouteClass, permits
from inventory.security.principal import Principal
from inventory.security.ratelimit import identity_channel
from inventory.security.users import live_principals

log = structlog.get_logger(__name__)

RECHECK_SECONDS = 2.0  # a lost announcement delays a close by at most this (< 5 s)
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass(eq=False)
class Watched:
    """One open socket: whose it is, what it watches, and, once decided, how it closes."""

    principal: Principal
    stores: frozenset[str] | None  # the stores it watches; None: every store
    expires_at: float | None  # the token's expiry (epoch seconds); None for an API key
    route_class: RouteClass = RouteClass.FEED
    verdict: asyncio.Future[tuple[int, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    timer: asyncio.TimerHandle | None = None  # closes the socket when its token expires

    def close(self, code: int, reason: str) -> None:
        """Decide the close (the socket's handler waits on `verdict` and closes)."""
        if not self.verdict.done():
            self.verdict.set_result((code, reason))

    def judge(self, current: Principal | None, now: float) -> None:
        """Close unless `current` (the principal as the primary has it now) still may."""
        if self.expires_at is not None and self.expires_at <= now:
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: the token has expired")
        elif current is None:
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: the credentials were revoked")
        elif not _session_holds(self.principal, current):
            self.close(CLOSE_UNAUTHORIZED, "unauthorized: the password was changed")
        elif not permits(current, self.route_class, self.stores or ()) or (
            self.stores is None and not current.all_stores
        ):
            self.close(CLOSE_FORBIDDEN, "forbidden: the role or store scope changed")


def _session_holds(socket: Principal, current: Principal) -> bool:
    """True unless the socket's token is from a generation the user has left (a password
    change or reset since the socket opened)."""
    if socket.session is None or current.session is None:
        return True
    return current.session.accepts(socket.session)


class SocketWatch:
    """The open sockets of one process and the task that re-checks them."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        connect: Callable[[], aioredis.Redis],
        namespace: str,
        interval: float = RECHECK_SECONDS,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        self._connect = connect  # a new Redis client per subscription (wiring.feed_client)
        self._channel = identity_channel(namespace)
        self._interval = interval
        # Called on every announcement (and after a lost subscription): the process's
        # cached principals go at once, before the identity epoch is even read again.
        self._on_change = on_change
        self.sockets: set[Watched] = set()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def watch(
        self, principal: Principal, stores: frozenset[str] | None, expires_at: float | None
    ) -> Watched:
        """Follow one socket from now on; `forget` it when it closes."""
        watched = Watched(principal, stores, expires_at)
        if expires_at is not None:
            watched.timer = asyncio.get_running_loop().call_later(
                max(0.0, expires_at - time.time()),
                watched.close,
                CLOSE_UNAUTHORIZED,
                "unauthorized: the token has expired",
            )
        self.sockets.add(watched)
        return watched

    def forget(self, watched: Watched) -> None:
        """Stop following a closed socket."""
        if watched.timer is not None:
            watched.timer.cancel()
        self.sockets.discard(watched)

    def start(self) -> None:
        """Run the re-checks and the Redis subscription until `stop`."""
        self._tasks = [
            asyncio.create_task(self._recheck_loop(), name="socket-watch"),
            asyncio.create_task(self._listen_loop(), name="socket-watch-redis"),
        ]

    async def stop(self) -> None:
        """Cancel both tasks and wait for them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _recheck_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._interval)
            self._changed.clear()
            try:
                await self.recheck()
            except Exception as error:  # noqa: BLE001 - the primary may be away; retry later
                log.warning("open sockets not re-checked", error=str(error))

    async def recheck(self) -> None:
        """Judge every open socket against the primary's current users and keys."""
        sockets = [w for w in self.sockets if not w.verdict.done()]
        if not sockets:
            return
        users = sorted({w.principal.id for w in sockets if w.principal.kind == "user"})
        keys = sorted({w.principal.id for w in sockets if w.principal.kind == "api_key"})
        async with self._pool.connection() as conn:
            live = await live_principals(conn, users, keys)
        now = time.time()
        for watched in sockets:
            watched.judge(live.get((watched.principal.kind, watched.principal.id)), now)

    async def _listen_loop(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as error:
                log.warning("identity announcements lost; resubscribing", error=str(error))
            self._announced()  # something may have changed while unsubscribed
            await asyncio.sleep(1.0)

    def _announced(self) -> None:
        if self._on_change is not None:
            self._on_change()
        self._changed.set()

    async def _listen(self) -> None:
        client = self._connect()
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(self._channel)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self._announced()
        finally:
            await client.aclose()
