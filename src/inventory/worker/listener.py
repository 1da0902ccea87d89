"""The worker's wake-up listener: pops woken partitions from Redis and serves their rounds.

A command's wake-up leaves the API as soon as the primary has committed, and the listener
takes it within a millisecond: usually before logical replication has brought the
command's events to the replica. Its round then finds nothing, and the events used to
wait for the next wake-up of that store or for the sweep (seconds). So a wake-up that
names a position is served at once (under load that round finds the store's earlier
commits) *and* held (`Serving.awaited`) until that event is in the replica's copy, when
its store is served again. The held wake-ups are checked in one query per pass, the
passes 2 ms apart at first and at most 20 ms. One held longer than AWAIT_SECONDS
(replication stopped or far behind) is let go: the sweep projects its events once they
arrive.
"""

from __future__ import annotations

import threading
import time

import redis
import structlog

from inventory.projectors import lag
from inventory.worker import actors
from inventory.worker.broker import wake_up_key
from inventory.worker.context import Serving, WorkerContext
from inventory.worker.wakeups import parse

log = structlog.get_logger(__name__)

BLOCK_SECONDS = 1  # one blocking pop's wait, so a stop is noticed within it
MIN_BACKOFF, MAX_BACKOFF = 0.2, 10.0  # after a failed round or Redis read, as Dramatiq retried
AWAIT_SECONDS = 10.0  # how long a wake-up waits for its event to reach the replica
FIRST_PAUSE, LAST_PAUSE = 0.002, 0.02  # between two checks for awaited events
# Held wake-ups at most: replication lag is tens of ms, so a thousand is a second of
# commits at 1,000/s; beyond, a wake-up is only served at once (the sweep covers a
# miss), and a pass's check stays a thousand index probes while replication stalls.
MAX_AWAITED = 1_000


def take(client: redis.Redis, key: str, *, block: bool) -> list[str]:
    """Every wake-up waiting in the list: the first by a blocking pop when `block` (none
    if nothing comes within BLOCK_SECONDS), then the rest in one atomic take."""
    first: list[bytes | str] = []
    if block:
        popped = client.blpop([key], timeout=BLOCK_SECONDS)
        if popped is None:
            return []
        first = [popped[1]]
    pipe = client.pipeline(transaction=True)
    pipe.lrange(key, 0, -1)
    pipe.delete(key)
    rest, _ = pipe.execute()
    return [p.decode() if isinstance(p, bytes) else p for p in first + rest]


def admit(serving: Serving, entries: list[str], now: float) -> None:
    """Add the wake-ups `entries` to the woken partitions and, when they name a position,
    to the awaited ones (caller holds `serving.lock`)."""
    for partition, position in map(parse, entries):
        serving.woken.add(partition)
        if position is not None and len(serving.awaited) < MAX_AWAITED:
            serving.awaited.setdefault((partition, position), now + AWAIT_SECONDS)


def settle(serving: Serving, present: set[int], now: float) -> tuple[int, int]:
    """Move the awaited wake-ups whose event is `present` to the woken partitions and let
    go of those past their time (caller holds `serving.lock`); how many of each."""
    arrived = expired = 0
    for key, deadline in list(serving.awaited.items()):
        if key[1] in present:
            serving.woken.add(key[0])
            arrived += 1
        elif now > deadline:
            expired += 1
        else:
            continue
        del serving.awaited[key]
    return arrived, expired


def arrivals(context: WorkerContext) -> tuple[int, int]:
    """One check of the awaited wake-ups against the replica's copy (see settle)."""
    serving = context.serving
    with serving.lock:
        positions = sorted({position for _, position in serving.awaited})
    if not positions:
        return 0, 0
    with context.replica.connection() as conn:
        present = lag.replicated(conn, positions)
    with serving.lock:
        return settle(serving, present, time.monotonic())


def listen(context: WorkerContext, stop: threading.Event, woken: threading.Event) -> None:
    """Take wake-ups into the woken set (and the awaited one) and signal `woken` until
    `stop`. This thread only talks to Redis: a slow Redis answer never delays the rounds,
    which `serve` runs."""
    client, key = context.broker.client, wake_up_key(context.broker)
    failures = 0
    while not stop.is_set():
        try:
            entries = take(client, key, block=True)
            failures = 0
        except redis.RedisError as error:
            failures += 1
            log.warning("wake-ups not read; the sweep covers meanwhile", error=str(error))
            stop.wait(_backoff(failures))
            continue
        if entries:
            with context.serving.lock:
                admit(context.serving, entries, time.monotonic())
            woken.set()


def serve(context: WorkerContext, stop: threading.Event, woken: threading.Event) -> None:
    """Serve rounds while partitions are woken (or their awaited events arrive), until
    `stop`. A wake-up taken and then lost (this process killed, a round failing for good)
    loses no event: the projectors resume from their checkpoints at the next wake-up or
    sweep."""
    pending: list[str] = []  # left by a turn that ran out (actors.MAX_TURN)
    failures = 0
    pause = FIRST_PAUSE
    warned = float("-inf")
    while not stop.is_set():
        awaiting = bool(context.serving.awaited)  # a hint: checked again under the lock
        signalled = bool(pending) or woken.wait(pause if awaiting else BLOCK_SECONDS)
        if not (signalled or awaiting):
            continue
        woken.clear()
        try:
            if awaiting:  # a round only for what arrived, unless a wake-up came too
                arrived, expired = arrivals(context)
                pause = FIRST_PAUSE if arrived else min(pause * 2, LAST_PAUSE)
                if expired and time.monotonic() > warned + AWAIT_SECONDS:
                    warned = time.monotonic()
                    log.warning(
                        "events that wake-ups announced are not in the replica's copy in time;"
                        " the sweep projects them when they arrive",
                        wake_ups=expired,
                        waited_seconds=AWAIT_SECONDS,
                    )
            pending = actors.serve_woken(context, pending)  # every round until none is woken
            failures = 0
        except Exception:  # serve_woken kept the partitions for the next round
            pending, failures = [], failures + 1
            log.exception("projection round failed; retrying", failures=failures)
            woken.set()
            stop.wait(_backoff(failures))


def _backoff(failures: int) -> float:
    return float(min(MIN_BACKOFF * 2.0 ** min(failures - 1, 16), MAX_BACKOFF))


def start(context: WorkerContext, stop: threading.Event) -> list[threading.Thread]:
    """Start the listener and the rounds' thread; they end within BLOCK_SECONDS (or a
    round) of `stop`."""
    woken = threading.Event()
    threads = [
        threading.Thread(target=target, args=(context, stop, woken), name=name, daemon=True)
        for target, name in ((listen, "wake-ups"), (serve, "wake-up-rounds"))
    ]
    for thread in threads:
        thread.start()
    return threads
