"""The worker process: a Dramatiq worker over our actors, stopped cleanly by SIGTERM."""

from __future__ import annotations

import signal
import threading

import structlog
from dramatiq import Worker

from inventory.runtime.settings import Settings
from inventory.worker.broker import build_broker

log = structlog.get_logger(__name__)

# An idle Redis consumer backs off exponentially before asking for messages again, up to
# this many milliseconds (Dramatiq's default is 1,000): the wake-up that ends a quiet spell
# waits up to that long (bench/projection.py at 20 events/s: p99 0.5 s with the default).
IDLE_POLL_MS = 100


def run_worker(settings: Settings, *, threads: int = 4) -> None:
    """Consume every queue until SIGINT or SIGTERM."""
    broker = build_broker(settings)
    # Actors bind to the broker set above; `reports` declares the `reports` queue.
    from inventory.worker import actors, reports  # noqa: F401, PLC0415

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = Worker(broker, worker_threads=threads, worker_timeout=IDLE_POLL_MS)
    worker.start()
    log.info("worker started", queues=sorted(broker.get_declared_queues()), threads=threads)
    actors.start_background(settings, stop)
    try:
        stop.wait()
    finally:
        log.info("worker stopping")
        worker.stop(timeout=10_000)
        broker.close()
        actors.close()
