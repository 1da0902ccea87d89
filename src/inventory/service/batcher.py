"""Group commit: one-trip commands that arrive together share one transaction."""

# One sender per process: the first command starts it and goes at once (no timer: a
# lone command is never delayed); commands that arrive while a batch is in flight go in
# the next one, up to SIZE, whatever their stores. One batch in flight at a time: the
# batch is the process's one round trip, commit and WAL flush for everything that
# arrived meanwhile, and two batches of one process writing the same stores would only
# queue for those stores' chain locks. Batches used to be per store; over 8 stores they
# were about 8 commands deep where one store's ran 32 deep, and each commit, round trip
# and per-batch step cost the primary and the API (bench/README.md, "one lane").
# The batch takes the chain locks of all its stores before anything else, in sorted
# order (migrations/0104), so it never waits while holding a lock. A batch's connection
# is the one pool connection it needs, taken when it is sent: waiting commands hold
# none. Each command's answer comes after the batch's durable marker.
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
    """Batches of calls, one in flight at a time, sent by `send` on a connection from
    `pool`."""

    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    send: Send
    send_one: Send | None = None
    """Sends a batch of one (a lone command): cheaper than `send` when nothing batches."""
    size: int = SIZE
    batches: int = 0
    """Batches sent (the bench reports the mean size: commands / batches)."""
    commands: int = 0
    """Commands sent in them."""
    _waiting: list[_Waiting] = field(default_factory=list, init=False)
    _sender: asyncio.Task[None] | None = field(default=None, init=False)

    async def __call__(
        self, call: Call, queued: Callable[[asyncio.Future[Answer]], None] | None = None
    ) -> Answer:
        """The call's answer, sent in the next batch; `queued` is told its answer's
        future once it is queued (a later call may then name it in `after`)."""
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((call, answer))
        if queued is not None:
            queued(answer)
        if self._sender is None:
            self._sender = asyncio.create_task(self._run())
        return await answer

    async def _run(self) -> None:
        # Not the callers' task: a caller cancelled (its client gone) leaves the batch it
        # is in running for the others; one not yet sent is left out.
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
                ready, after = _ready(batch)
                if ready:
                    await self._send(ready, after)
        finally:
            self._sender = None
            waiting, self._waiting = self._waiting, []
            for _, answer in waiting:
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
