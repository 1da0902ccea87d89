"""The worker's wake-up listener: pops woken partitions from Redis and serves their rounds."""

from __future__ import annotations

import threading

import redis
import structlog

from inventory.worker import actors
from inventory.worker.broker import wake_up_key
from inventory.worker.context import WorkerContext

log = structlog.get_logger(__name__)

BLOCK_SECONDS = 1  # one blocking pop's wait, so a stop is noticed within it
MIN_BACKOFF, MAX_BACKOFF = 0.2, 10.0  # after a failed round or Redis read, as Dramatiq retried


def take(client: redis.Redis, key: str, *, block: bool) -> list[str]:
    """Every partition waiting in the list: the first by a blocking pop when `block`
    (none if nothing comes within BLOCK_SECONDS), then the rest in one atomic take."""
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


def listen(context: WorkerContext, stop: threading.Event, woken: threading.Event) -> None:
    """Take wake-ups into the woken set and signal `woken` until `stop`. This thread only
    talks to Redis: a slow Redis answer never delays the rounds, which `serve` runs."""
    client, key = context.broker.client, wake_up_key(context.broker)
    failures = 0
    while not stop.is_set():
        try:
            partitions = take(client, key, block=True)
            failures = 0
        except redis.RedisError as error:
            failures += 1
            log.warning("wake-ups not read; the sweep covers meanwhile", error=str(error))
            stop.wait(_backoff(failures))
            continue
        if partitions:
            with context.serving.lock:
                context.serving.woken.update(partitions)
            woken.set()


def serve(context: WorkerContext, stop: threading.Event, woken: threading.Event) -> None:
    """Serve rounds while partitions are woken, until `stop`. A wake-up taken and then
    lost (this process killed, a round failing for good) loses no event: the projectors
    resume from their checkpoints at the next wake-up or sweep."""
    pending: list[str] = []  # left by a turn that ran out (actors.MAX_TURN)
    failures = 0
    while not stop.is_set():
        if not (pending or woken.wait(BLOCK_SECONDS)):
            continue
        woken.clear()
        try:
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
