"""One feed connection's delivery: the backlog, then live messages, each seq once.

The connection subscribes to the hub *before* it reads the backlog, so every event is
either in the backlog (committed by the projectors when it was read) or queued live
(published after that commit); `last_sent` per store drops the overlap. A live message
whose `prev_seq` lies beyond what was sent reveals a lost message: the session reads the
replica from `last_sent` on (a resync), which also covers that message itself.

Given a frame writer (feed/frames.py), a session in step also serves the hub's direct
path (`direct`): the same rule, applied synchronously in the hub's dispatch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prometheus_client import Counter
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from inventory.feed import messages
from inventory.feed.frames import FrameWriter
from inventory.feed.live import History, Live
from inventory.readmodels import feed_publication
from inventory.readmodels.feed_publication import EventRow

PAGE = 500

Send = Callable[[str], Awaitable[None]]

RESYNCS = Counter(
    "inventory_feed_resyncs",
    "Times a feed connection saw a live message missing before another and read the "
    "replica to fill the gap",
)


class FeedSession:
    """What one connection has sent, per store, and how it sends more."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        stores: frozenset[str] | None,
        after: int,
        send: Send,
        writer: FrameWriter | None = None,
        *,
        history: History | None = None,
    ) -> None:
        self.pool = pool
        self.stores = stores
        self.after = after  # the cursor of every store not in `last_sent`
        self.send = send
        self.writer = writer
        self.history = history
        self.last_sent: dict[str, int] = dict.fromkeys(stores or (), after)

    async def start_at_now(self) -> None:
        """Without `after`: start each store at what the read models hold now (at the
        hub's latest message when it has some for every store: that much is held, and
        what follows comes live)."""
        latest = self.history.latest(self.stores) if self.history is not None else None
        if latest is not None:
            self.last_sent.update(latest)
            return
        async with self.pool.connection() as conn:
            for store, bound in await feed_publication.projected_bounds(conn, self._scope()):
                self.last_sent[store] = int(bound)

    async def catch_up(self, *, replica: bool = False) -> int:
        """Send everything the read models hold past `last_sent`, in seq order; the count.
        From the hub's history when it holds all of that (unless `replica`), else from
        the replica; with a frame writer, in one write per page."""
        total = 0
        while True:
            if (recent := None if replica else self._recent()) is not None:
                await self._send_all(recent)
                return total + len(recent)
            page = await self._page(use_history=not replica)
            if page is None:
                continue  # while it waited for a connection, the hub got the rest
            rows, levels, alerts = page
            await self._send_all([Live.of(b) for b in messages.bundles(rows, levels, alerts)])
            total += len(rows)
            if len(rows) < PAGE:
                return total

    def behind(self, bounds: Iterable[tuple[str, int]]) -> bool:
        """Whether the read models hold more than was sent, given each store's bound."""
        return any(
            int(bound) > self._sent(store)
            for store, bound in bounds
            if self.stores is None or store in self.stores
        )

    def _recent(self) -> list[Live] | None:
        """What the connection lacks, if the hub's history holds it all (and in which
        store each message falls is known: a connection to every store reads the replica)."""
        if self.history is None or self.stores is None:
            return None
        found: list[Live] = []
        for store in sorted(self.stores):
            lives = self.history.after(store, self._sent(store))
            if lives is None:
                return None
            found += lives
        return found

    async def _send_all(self, lives: list[Live]) -> None:
        if self.writer is not None:
            await self.write_all(lives)
            return
        for live in lives:
            await self._send(live)

    async def deliver(self, live: Live) -> None:
        """Send a live message (each of a chain's) unless already sent; resync first if
        one went missing."""
        if self.stores is not None and live.store not in self.stores:
            return
        for one in live.each():
            if one.prev_seq > self._sent(one.store):
                RESYNCS.inc()
                await self.catch_up()
            if one.seq > self._sent(one.store):
                await self._send(one)

    async def write_all(self, lives: list[Live]) -> None:
        """`deliver` for many messages with a frame writer: the frames of all those not sent
        yet in one write, once the transport has room (a gap first writes what comes before
        it, then reads the replica from what was sent)."""
        assert self.writer is not None
        frames: list[bytes] = []
        for live in lives:
            if self.stores is not None and live.store not in self.stores:
                continue
            for one in live.each():
                if one.prev_seq > self._sent(one.store):
                    await self._write(frames)
                    frames = []
                    RESYNCS.inc()
                    await self.catch_up()
                if one.seq > self._sent(one.store):
                    frames.append(one.frames)
                    self.last_sent[one.store] = one.seq
        await self._write(frames)

    async def _write(self, frames: list[bytes]) -> None:
        if frames and self.writer is not None:
            # As ASGI send would: wait while the client's socket and transport are full.
            await self.writer.drained()
            self.writer.write(b"".join(frames))

    def direct(self, live: Live) -> bytes | None:
        """`deliver` without waiting, for the hub (`hub.Direct`): the frames to write
        (b"" if sent already), or None when a message is missing before `live` or the
        connection is not writable now. Of a chain partly sent, the rest."""
        sent = self._sent(live.store)
        if live.seq <= sent:
            return b""
        if live.prev_seq > sent or self.writer is None or not self.writer.writable():
            return None
        self.last_sent[live.store] = live.seq
        if live.parts and live.parts[0].seq <= sent:
            # The chain's events follow one another: those after `sent` leave no gap.
            return b"".join(part.frames for part in live.parts if part.seq > sent)
        return live.frames

    def _sent(self, store: str) -> int:
        return self.last_sent.get(store, self.after)

    async def _send(self, live: Live) -> None:
        for text in live.texts:
            await self.send(text)
        self.last_sent[live.store] = live.seq

    def _scope(self) -> list[str] | None:
        return None if self.stores is None else sorted(self.stores)

    async def _page(
        self, *, use_history: bool
    ) -> tuple[list[EventRow], dict[int, tuple[Any, ...]], dict[int, list[dict[str, Any]]]] | None:
        async with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            if use_history and self._recent() is not None:
                return None
            rows = await feed_publication.catch_up_page(
                cur, self._scope(), self.last_sent, self.after, PAGE
            )
            if not rows:
                return rows, {}, {}
            seqs = [row.seq for row in rows]
            levels, alert_rows = await feed_publication.read_extras_async(cur, seqs)
        return rows, levels, messages.alert_messages(alert_rows)


async def projected_bounds(
    pool: AsyncConnectionPool[Any], stores: frozenset[str] | None
) -> list[tuple[str, int]]:
    """(store, seq) of what every projector holds, in each of `stores` (None: every one)."""
    scope = None if stores is None else sorted(stores)
    async with pool.connection() as conn:
        return [
            (row[0], int(row[1])) for row in await feed_publication.projected_bounds(conn, scope)
        ]
