"""Group commit: a store's one-trip commands that arrive together share one transaction."""

# One sender per store per process: the first command starts it and goes at once (no
# timer: a lone command is never delayed); commands that arrive while a batch is in
# flight go in the next one, up to SIZE. Batches of one store would queue for the store's
# chain lock anyway, so more than one in flight would only hold more connections. A
# batch's connection is the one pool connection it needs, taken when it is sent: waiting
# commands hold none. Each command's answer comes after the batch's durable marker.
# Commands on one stream take turns (cache.py), but a command queued hands its turn on:
# the next decides on the heads the queued one will leave and goes in the same batch
# or a later one, named as coming after it, so a hot stream's sales batch too. A
# lone command goes as command_once (0096) would send it: the batch's per-command block
# and JSON cost the primary and the API more than they save for one.

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from inventory.eventstore.batch import Answer, Call
from inventory.eventstore.once import Stale
from inventory.service.cache import was_written

SIZE = 32
"""Commands a batch carries at most: each writing one takes a subtransaction id, and
PostgreSQL keeps 64 per backend cached before snapshots of every session get slower."""
Send = Callable[
    [psycopg.AsyncConnection[Any], Sequence[Call], Sequence[Sequence[int]]], Awaitable[list[Answer]]
]
"""command_batch's shape: the calls, and per call the places of those it comes after."""
_Waiting = tuple[Call, "asyncio.Future[Answer]"]


@dataclass
class Batcher:
    """Per-store batches of calls, sent by `send` on a connection from `pool`."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    send: Send
    send_one: Send | None = None
    """Sends a batch of one (a lone command): cheaper than `send` when nothing batches."""
    size: int = SIZE
    batches: int = 0
    """Batches sent (the bench reports the mean size: commands / batches)."""
    commands: int = 0
    """Commands sent in them."""
    _waiting: dict[str | None, list[_Waiting]] = field(default_factory=dict, init=False)
    _senders: dict[str | None, asyncio.Task[None]] = field(default_factory=dict, init=False)

    async def __call__(
        self,
        store: str | None,
        call: Call,
        queued: Callable[[asyncio.Future[Answer]], None] | None = None,
    ) -> Answer:
        """The call's answer, sent in the store's next batch; `queued` is told its
        answer's future once it is queued (a later call may then name it in `after`)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(store, []).append((call, answer))
        if queued is not None:
            queued(answer)
        if store not in self._senders:
            self._senders[store] = asyncio.create_task(self._run(store))
        return await answer

    async def _run(self, store: str | None) -> None:
        # Not the callers' task: a caller cancelled (its client gone) leaves the batch it
        # is in running for the others; one not yet sent is left out.
        try:
            while waiting := self._waiting.get(store):
                batch, self._waiting[store] = waiting[: self.size], waiting[self.size :]
                ready, after = _ready(batch)
                if ready:
                    await self._send(ready, after)
        finally:
            del self._senders[store]
            for _, answer in self._waiting.pop(store, []):
                answer.cancel()  # only when this task was cancelled (shutdown)

    async def _send(self, batch: list[_Waiting], after: list[list[int]]) -> None:
        self.batches += 1
        self.commands += len(batch)
        try:
            async with self.pool.connection() as conn:
                send = self.send_one if self.send_one and len(batch) == 1 else self.send
                answers = await send(conn, [call for call, _ in batch], after)
        except BaseException as error:
            for _, answer in batch:
                if answer.done():
                    continue
                if isinstance(error, Exception):
                    answer.set_exception(error)
                else:
                    answer.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for (_, answer), result in zip(batch, answers, strict=True):
            if not answer.done():
                answer.set_result(result)


def _ready(batch: list[_Waiting]) -> tuple[list[_Waiting], list[list[int]]]:
    """The calls of `batch` to send (not cancelled), and per call the places of the calls
    of the batch it comes after; one that comes after a call not written (answered, and
    not with its events) is answered stale at once: its decision's heads never were."""
    places: dict[asyncio.Future[Answer], int] = {}
    ready: list[_Waiting] = []
    after: list[list[int]] = []
    for call, answer in batch:
        if answer.done():
            continue
        mine = [places[earlier] for earlier in call.after if earlier in places]
        if any(earlier not in places and not was_written(earlier) for earlier in call.after):
            answer.set_result(Stale({}))
            continue
        ready.append((call, answer))
        places[answer] = len(ready)
        after.append(mine)
    return ready, after
