"""The worker's Prometheus metrics: counters its actors keep, and at each scrape the lag,
stalls and queue depths read from the replica and Redis; served by `serve`.

The registry is the worker's own, not prometheus_client's global one: the API process
imports worker modules (the wake-ups) and must not export the worker's series as zeros.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog
from dramatiq import Middleware
from dramatiq.common import dq_name, xq_name
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from inventory.projectors import stalls
from inventory.projectors.backlog import backlogs_blocking
from inventory.projectors.lag import lags
from inventory.readmodels.registry import PROJECTORS
from inventory.worker.broker import wake_up_key

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    import dramatiq

    from inventory.worker.context import WorkerContext

log = structlog.get_logger(__name__)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

EVENTS_PROJECTED = Counter(
    "inventory_worker_events_projected",
    "Events applied to the read models, by projector",
    ["projector"],
    registry=REGISTRY,
)
PROJECTION_FAILURES = Counter(
    "inventory_worker_projection_failures",
    "Times a projector was found unable to apply an event in a store (a stall recorded "
    "or retried); projector is '' when the failing event could not be pinned down",
    ["projector", "store"],
    registry=REGISTRY,
)
MESSAGES = Counter(
    "inventory_worker_messages",
    "Dramatiq messages this process handled, by queue, actor and outcome "
    "(done, failed: raised and will be retried or dead-lettered, skipped)",
    ["queue", "actor", "outcome"],
    registry=REGISTRY,
)
MESSAGE_SECONDS = Histogram(
    "inventory_worker_message_duration_seconds",
    "Time an actor took on one message",
    ["queue", "actor"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REPORT_RUNS = Counter(
    "inventory_worker_report_runs",
    "Reports this process finished, by status (done, failed)",
    ["status"],
    registry=REGISTRY,
)
WEBHOOKS_DISABLED = Counter(
    "inventory_worker_webhooks_disabled",
    "Webhook subscriptions this process disabled after a message failed for 3 days",
    registry=REGISTRY,
)
READ_TIMEOUT = 2.0  # seconds a scrape waits for a replica connection


class MessageMetrics(Middleware):
    """Counts and times every message the worker processes (Dramatiq's own Prometheus
    middleware serves a second HTTP port of its own, configured by `dramatiq_prom_*`
    variables, and only under the `dramatiq` command: ours joins the worker's registry)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Note when the message started."""
        with self._lock:
            self._started[message.message_id] = time.monotonic()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Count the outcome and the time taken."""
        with self._lock:
            started = self._started.pop(message.message_id, None)
        outcome = "done" if exception is None else "failed"
        MESSAGES.labels(message.queue_name, message.actor_name, outcome).inc()
        if started is not None:
            MESSAGE_SECONDS.labels(message.queue_name, message.actor_name).observe(
                time.monotonic() - started
            )

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """A message skipped (its age limit passed, or a middleware refused it)."""
        with self._lock:
            self._started.pop(message.message_id, None)
        MESSAGES.labels(message.queue_name, message.actor_name, "skipped").inc()


class WorkerCollector(Collector):
    """What the worker reads at each scrape: projector lag per projector and store, the
    recorded stalls, this process's backed-off stores, and the broker's queue depths."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges; a source that cannot be read says so in `..._read_ok`."""
        read_ok = GaugeMetricFamily(
            "inventory_worker_scrape_read_ok",
            "1 if this scrape read the source (replica, redis), 0 if it could not",
            labels=["source"],
        )
        replica = self._replica()
        read_ok.add_metric(["replica"], 1 if replica else 0)
        yield from replica
        queues = self._queues()
        read_ok.add_metric(["redis"], 1 if queues else 0)
        yield from queues
        backed_off = GaugeMetricFamily(
            "inventory_worker_stores_backed_off",
            "Stores this process retries alone, with back-off, after a projector failed there",
        )
        with self.context.containment.lock:
            backed_off.add_metric([], len(self.context.containment.stalled))
        yield backed_off
        yield read_ok

    def _replica(self) -> list[GaugeMetricFamily]:
        try:
            with self.context.replica.connection(timeout=READ_TIMEOUT) as conn:
                with conn.transaction():
                    every = lags(conn, PROJECTORS)
                behind = backlogs_blocking(conn, [p.name for p in PROJECTORS], 1, 0.0)
                found = stalls.live(conn)
        except Exception as error:  # noqa: BLE001 - a scrape answers with the replica down
            log.warning("metrics could not read the replica", error=type(error).__name__)
            return []
        events = GaugeMetricFamily(
            "inventory_worker_projection_lag_events",
            "Events in the replica's copy a projector has not applied yet, per store",
            labels=["projector", "store"],
        )
        seconds = GaugeMetricFamily(
            "inventory_worker_projection_lag_seconds",
            "Age of the oldest event a projector has not applied yet, per store (0 caught up)",
            labels=["projector", "store"],
        )
        ages = {(b.projector, b.partition): b.oldest_age_seconds for b in behind}
        for lag in every:
            events.add_metric([lag.projector, lag.partition], lag.behind)
            age = ages.get((lag.projector, lag.partition), 0.0)
            seconds.add_metric([lag.projector, lag.partition], max(age, 0.0))
        stalled = GaugeMetricFamily(
            "inventory_worker_projection_stalled",
            "1 per projector and store stopped at an event it cannot apply (the replica's record)",
            labels=["projector", "store"],
        )
        for stall in found:
            stalled.add_metric([stall.projector, stall.partition], 1)
        return [events, seconds, stalled]

    def _queues(self) -> list[GaugeMetricFamily]:
        broker = self.context.broker
        names = sorted(q for q in broker.get_declared_queues() if not q.endswith(".DQ"))
        depth = GaugeMetricFamily(
            "inventory_worker_queue_messages",
            "Messages in the broker's queues: ready (waiting for a worker), delayed "
            "(retries and reminders not due yet), dead (dead-lettered, kept 7 days)",
            labels=["queue", "state"],
        )
        try:
            with self.context.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.llen(f"{broker.namespace}:{name}")
                    pipe.llen(f"{broker.namespace}:{dq_name(name)}")
                    pipe.zcard(f"{broker.namespace}:{xq_name(name)}")
                pipe.llen(wake_up_key(broker))  # not a Dramatiq queue: worker/listener.py
                counts = pipe.execute()
        except Exception as error:  # noqa: BLE001 - a scrape answers with Redis down
            log.warning("metrics could not read the queues", error=type(error).__name__)
            return []
        for index, name in enumerate(names):
            for offset, state in enumerate(("ready", "delayed", "dead")):
                depth.add_metric([name, state], int(counts[index * 3 + offset]))
        depth.add_metric(["wake-ups", "ready"], int(counts[-1]))
        return [depth]


def serve(context: WorkerContext) -> WSGIServer | None:
    """Serve the worker's metrics on INVENTORY_WORKER_METRICS_HOST:PORT (None: disabled,
    or the port is taken: the worker projects all the same and says so)."""
    settings = context.settings
    if not settings.worker_metrics_port:
        log.info("worker metrics disabled (INVENTORY_WORKER_METRICS_PORT=0)")
        return None
    collector = WorkerCollector(context)
    REGISTRY.register(collector)
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        server, _ = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as error:
        REGISTRY.unregister(collector)
        log.error(  # noqa: TRY400 - the reason is all an operator needs
            "worker metrics not served: the address is unavailable (give each worker "
            "process its own INVENTORY_WORKER_METRICS_PORT)",
            host=host,
            port=port,
            error=str(error),
        )
        return None
    log.info("worker metrics served", url=f"http://{host}:{port}/metrics")
    server.collector = collector  # type: ignore[attr-defined]
    return server


def stop(server: WSGIServer | None) -> None:
    """Stop serving metrics (and forget the collector: the context is closing)."""
    if server is None:
        return
    server.shutdown()
    server.server_close()
    REGISTRY.unregister(server.collector)  # type: ignore[attr-defined]
