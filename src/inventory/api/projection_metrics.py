"""Projection metrics on `/metrics`: the stalls every API process reads from the replica,
and the primary's replication slot (how much WAL the replica has not confirmed).

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
from inventory.runtime import replication_status
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


class SlotCollector(Collector):
    """The replica's slot on the primary as the last scrape found it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: tuple[bool, int] | None = None  # (active, lag bytes); None: no slot
        self._read_ok = False

    def update(self, status: tuple[bool, int] | None, *, read_ok: bool) -> None:
        """Keep what was just read (on a failed read, the last status is kept)."""
        with self._lock:
            self._read_ok = read_ok
            if read_ok:
                self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The slot's gauges (absent when the primary has no slot for the replica)."""
        with self._lock:
            status, read_ok = self._status, self._read_ok
        if status is not None:
            yield GaugeMetricFamily(
                "inventory_replication_slot_lag_bytes",
                "WAL on the primary the replica's subscription has not confirmed (bytes)",
                value=status[1],
            )
            yield GaugeMetricFamily(
                "inventory_replication_slot_active",
                "1 if the replica's subscription is connected to its slot on the primary",
                value=1 if status[0] else 0,
            )
        yield GaugeMetricFamily(
            "inventory_replication_slot_present",
            "1 if the primary has the replica's replication slot",
            value=0 if status is None else 1,
        )
        yield GaugeMetricFamily(
            "inventory_replication_slot_read_ok",
            "1 if the last scrape read the slot from the primary, 0 if it kept older figures",
            value=1 if read_ok else 0,
        )


COLLECTOR = StallCollector()
REGISTRY.register(COLLECTOR)
SLOT = SlotCollector()
REGISTRY.register(SLOT)


async def refresh(resources: Resources) -> None:
    """Read the stalls and the slot for this scrape."""
    await _refresh_stalls(resources)
    await _refresh_slot(resources)


async def _refresh_slot(resources: Resources) -> None:
    try:
        async with resources.primary.connection(timeout=READ_TIMEOUT) as conn:
            row = await replication_status.slot_status(conn)
    except Exception as error:  # noqa: BLE001 - a scrape answers even with the primary down
        log.warning("could not read the replication slot for /metrics", error=type(error).__name__)
        SLOT.update(None, read_ok=False)
        return
    SLOT.update(None if row is None else (bool(row[0]), int(row[1] or 0)), read_ok=True)


async def _refresh_stalls(resources: Resources) -> None:
    """Read the stalls; on failure keep the last ones (and say so)."""
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
