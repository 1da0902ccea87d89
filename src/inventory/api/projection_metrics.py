"""Projection metrics on `/metrics`: the stalls every API process reads from the replica.

A stall lives in the replica's `projection_stalls` table (projectors/stalls.py), not in
any one process, so each scrape reads it again (a primary-key-sized table) and exposes
one series per stalled projector and store, labelled with the event and the error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from inventory.projectors import stalls
from inventory.runtime.resources import Resources

log = structlog.get_logger(__name__)

READ_TIMEOUT = 2.0
LABELS = ("projector", "store", "seq", "position", "stream", "type", "error_class", "error")


class StallCollector(Collector):
    """The stalls read at the last scrape, as gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stalls: list[stalls.Stall] = []
        self._read_ok = False

    def update(self, found: list[stalls.Stall] | None) -> None:
        """Keep the stalls just read (None: the read failed; the last ones are kept)."""
        with self._lock:
            self._read_ok = found is not None
            if found is not None:
                self._stalls = found

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges, from the stalls kept."""
        with self._lock:
            found, read_ok = list(self._stalls), self._read_ok
        stalled = GaugeMetricFamily(
            "inventory_projection_stalled",
            "1 per projector and store stopped at an event it cannot apply",
            labels=LABELS,
        )
        attempts = GaugeMetricFamily(
            "inventory_projection_stall_attempts",
            "Times the worker has tried the stalled event",
            labels=("projector", "store"),
        )
        since = GaugeMetricFamily(
            "inventory_projection_stalled_since_seconds",
            "Unix time the projector first failed on the event",
            labels=("projector", "store"),
        )
        for stall in found:
            stalled.add_metric(_labels(stall), 1)
            attempts.add_metric([stall.projector, stall.partition], stall.attempts)
            if stall.first_failed_at is not None:
                since.add_metric(
                    [stall.projector, stall.partition], stall.first_failed_at.timestamp()
                )
        yield stalled
        yield attempts
        yield since
        yield GaugeMetricFamily(
            "inventory_projection_stalls",
            "Projector partitions (stores) stalled at an event",
            value=len(found),
        )
        yield GaugeMetricFamily(
            "inventory_projection_stalls_read_ok",
            "1 if the last scrape read the stalls from the replica, 0 if it kept older ones",
            value=1 if read_ok else 0,
        )


def _labels(stall: stalls.Stall) -> list[str]:
    return [
        stall.projector,
        stall.partition,
        str(stall.seq),
        str(stall.position),
        stall.stream,
        stall.event_type,
        stall.error_class,
        stall.error,
    ]


COLLECTOR = StallCollector()
REGISTRY.register(COLLECTOR)


async def refresh(resources: Resources) -> None:
    """Read the stalls for this scrape; on failure keep the last ones (and say so)."""
    started = time.monotonic()
    try:
        async with resources.replica.connection(timeout=READ_TIMEOUT) as conn:
            found = await stalls.live_async(conn)
    except Exception as error:  # noqa: BLE001 - a scrape answers even with the replica down
        log.warning(
            "could not read projection stalls for /metrics",
            error=type(error).__name__,
            seconds=round(time.monotonic() - started, 3),
        )
        COLLECTOR.update(None)
        return
    COLLECTOR.update(found)
