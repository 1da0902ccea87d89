"""The worker process: a Dramatiq worker over our actors, stopped cleanly by SIGTERM."""

from __future__ import annotations

import signal
import threading

import redis
import structlog
from dramatiq import Broker, Worker

from inventory.worker import metrics
from inventory.worker.context import WorkerContext

log = structlog.get_logger(__name__)

# An idle Redis consumer backs off exponentially before asking for messages again, up to
# this many milliseconds (Dramatiq's default is 1,000): the wake-up that ends a quiet spell
# waits up to that long (bench/projection.py at 20 events/s: p99 0.5 s with the default).
IDLE_POLL_MS = 100


def run_worker(context: WorkerContext, *, threads: int = 4) -> None:
    """Consume every queue until SIGINT or SIGTERM (wiring.build_worker closes the rest)."""
    # Actors bind to the context's broker, built before this import; the sweep imports
    # every actor module, so every queue is declared.
    from inventory.worker import listener, sweep  # noqa: PLC0415

    broker = context.broker
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    worker = Worker(broker, worker_threads=threads, worker_timeout=IDLE_POLL_MS)
    worker.start()
    log.info("worker started", queues=sorted(broker.get_declared_queues()), threads=threads)
    sweep.start_background(context, stop)
    wake_ups = listener.start(context, stop)
    server = metrics.serve(context)
    try:
        stop.wait()
    finally:
        log.info("worker stopping")
        metrics.stop(server)
        for thread in wake_ups:
            thread.join(10)  # a round under way finishes before the pools close
        _stop(worker, broker)


def _stop(worker: Worker, broker: Broker) -> None:
    """Stop Dramatiq's threads within 10 s (the systemd unit outwaits it), with or without
    Redis."""
    try:
        worker.stop(timeout=10_000)
    except redis.RedisError as error:
        # Without Redis, Dramatiq's requeue of its prefetched messages raises before the
        # worker_shutdown hooks run, so the AsyncIO middleware's event loop thread (not a
        # daemon) is never stopped and the process never exits. Run the hooks ourselves;
        # the unacknowledged messages come back to a worker once their lease runs out.
        log.warning(
            "worker stopped without Redis: its unacknowledged messages are redelivered later",
            error=str(error),
        )
        broker.emit_after("worker_shutdown", worker)
