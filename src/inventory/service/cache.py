"""Streams' heads as this process last saw them durable: what a one-trip decision assumes."""

# A version names one state (migrations/0096's header), so a head cached at version v is
# right for as long as the stream is at v, and command_once checks exactly that under the
# streams' locks. A head is kept only once it is durable: read or written by a transaction
# whose durable marker returned (transaction.py, early lock release). A head read from a
# commit not yet flushed could be lost to a crash, and a later commit could give the same
# version another state. A wrong or missing head costs a round trip, never a wrong answer.

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from inventory.domain.context import Head
from inventory.domain.state import initial_state

CAPACITY = 20_000
"""Streams kept: about 1 kB each as Python objects, so about 20 MB per process. Every sale
adds its own stream, which goes in at the OLD end (`SELDOM`); the stock, store and product
streams it touches move to the young end, so under load a stream sold from at least every
CAPACITY sales or so stays cached. (Sales' streams at the young end took half the room:
over 8,000 stock streams about 3 in 10 then fell out between two sales of theirs, each a
stale answer and a retry.)"""
SELDOM = ("sale-",)
"""Streams written when made and seldom after (a return reads its sale much later): kept
while there is room, the first to go when there is not."""


class HeadCache:
    """A bounded LRU of streams' heads; a stream it does not hold is assumed new."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._heads: OrderedDict[str, Head] = OrderedDict()
        self._tails: dict[str, asyncio.Future[None]] = {}
        self._ahead: dict[str, tuple[Head, asyncio.Future[Any]]] = {}
        self.hits = 0
        """Commands answered in one round trip (the bench reports the rate)."""
        self.misses = 0
        """Calls that found a head stale (nothing written)."""
        self.refreshed = 0
        """Commands answered by a second call, on the heads the first found stale."""

    def get(self, stream: str) -> Head:
        """The stream's head as last seen, or version 0 in its initial state."""
        head = self._heads.get(stream)
        if head is None:
            return Head(0, initial_state(stream))
        self._heads.move_to_end(stream)
        return head

    def queued(self, stream: str) -> tuple[Head, asyncio.Future[Any] | None] | None:
        """The head a command queued in a batch will leave (not durable: with the future of
        that command's answer; durable once that says written: with None), or None when
        no command queued on the stream is pending or written and not yet kept."""
        queued = self._ahead.get(stream)
        if queued is None:
            return None
        head, answer = queued
        if not answer.done():
            return queued
        if was_written(answer):
            # Durable, though `settled` (a done callback, run soon) has not kept it yet.
            return head, None
        return None

    def queue(self, heads: Mapping[str, Head], answer: asyncio.Future[Any]) -> None:
        """`heads` as a queued command will leave them, until `answer` is set."""
        for stream, head in heads.items():
            self._ahead[stream] = (head, answer)

        def settled(_: asyncio.Future[Any]) -> None:
            for stream in heads:
                if self._ahead.get(stream, (None, None))[1] is answer:
                    del self._ahead[stream]
            # Written (its events' places answered once the batch is durable): the heads
            # are durable now, before its caller runs again to keep them.
            if was_written(answer):
                self.keep(heads)

        answer.add_done_callback(settled)

    async def settled(self, streams: Iterable[str]) -> None:
        """Wait until no command queued in a batch will still write `streams`: the last one
        queued on each is answered (batches of a store go one after another)."""
        pending: set[asyncio.Future[Any]] = set()
        for stream in streams:
            queued = self._ahead.get(stream)
            if queued is not None and not queued[1].done():
                pending.add(queued[1])
        if pending:
            await asyncio.wait(pending)

    def keep(self, heads: Mapping[str, Head]) -> None:
        """Remember `heads` (durable ones only), unless a later version is already known."""
        for stream, head in heads.items():
            known = self._heads.get(stream)
            if known is not None and known.version > head.version:
                continue
            self._heads[stream] = head
            self._heads.move_to_end(stream, last=not stream.startswith(SELDOM))
        while len(self._heads) > self.capacity:
            self._heads.popitem(last=False)

    def forget(self, streams: Iterable[str]) -> None:
        """Drop what is known of `streams` (found stale)."""
        for stream in streams:
            self._heads.pop(stream, None)

    @asynccontextmanager
    async def turn(self, streams: Iterable[str]) -> AsyncIterator[Turn]:
        """Wait until the commands of this process that came first and write any of
        `streams` are done (or queued in a batch), and hold them until this one is, or
        until it hands its turn on (queued in a batch: `Turn.hand_on`); first come, first
        served."""
        # Commands of one process on one stream take turns here rather than on the
        # stream's row: each then decides on the heads the one before it left, and one
        # round trip does (without turns, all but one would find their heads stale and
        # pay a round trip more). Each waits on its predecessors only: no herd wakes.
        # Taken before a pooled connection, so waiting holds none.
        names = sorted(set(streams))
        before = {self._tails[name] for name in names if name in self._tails}
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for name in names:
            self._tails[name] = mine
        turn = Turn(lambda: _done_after(mine, before))
        try:
            if before:
                await asyncio.wait(before)
            yield turn
        finally:
            for name in names:
                if self._tails.get(name) is mine:
                    del self._tails[name]
            turn.hand_on()


class Turn:
    """A command's turn on the streams it writes (HeadCache.turn)."""

    def __init__(self, give: Callable[[], None]) -> None:
        self._give = give
        self.handed = False
        """Handed on: the command's successors decide (on the heads it will leave)."""

    def hand_on(self) -> None:
        """Let the next command on these streams decide: this one is queued in a batch,
        and the next decides on the heads it will leave (`HeadCache.queued`)."""
        if not self.handed:
            self.handed = True
            self._give()


def was_written(answer: asyncio.Future[Any]) -> bool:
    """Whether a queued command's answer says it was written (its events' places)."""
    return (
        answer.done()
        and not answer.cancelled()
        and isinstance(answer.exception() or answer.result(), list)
    )


def _done_after(mine: asyncio.Future[None], before: set[asyncio.Future[None]]) -> None:
    """Mark `mine` done once `before` are: a command cancelled while it waited still keeps
    its successors behind its predecessors."""
    pending = {future for future in before if not future.done()}
    if not pending:
        mine.set_result(None)
        return

    def one_done(future: asyncio.Future[None]) -> None:
        pending.discard(future)
        if not pending and not mine.done():
            mine.set_result(None)

    for future in list(pending):
        future.add_done_callback(one_done)
