"""The worker's rounds, contained: one store's event a projector cannot apply stops only
that projector in that store (recorded as a stall), never the round's other stores."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog

from inventory.projectors import stalls
from inventory.projectors.catch_up import catch_up_partitions
from inventory.projectors.containment import isolate
from inventory.readmodels.registry import PROJECTORS
from inventory.worker.metrics import EVENTS_PROJECTED, PROJECTION_FAILURES

log = structlog.get_logger(__name__)

# Partitions where a projector is stalled (an event it cannot apply): each goes alone, no
# sooner than its back-off allows, so it neither fails the rounds it would share nor
# spins the CPU. In memory: a restart (how a fix ships) retries at once.
BACKOFF_FIRST = 1.0  # seconds before the first retry; doubled after each failure
BACKOFF_MAX = 60.0


@dataclass
class _Backoff:
    failures: int
    due: float  # time.monotonic() of the next retry


@dataclass(frozen=True)
class Round:
    """What `Containment.project` did."""

    projected: list[str]  # partitions every projector caught up on
    applied: int  # events applied by the round of healthy partitions and the retries


@dataclass
class Containment:
    """The process's stalled partitions and their back-off (one per worker context)."""

    stalled: dict[str, _Backoff] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def project(self, conn: psycopg.Connection[Any], partitions: list[str]) -> Round:
        """Catch every projector up on the partitions: the healthy ones in one round; if
        that fails, or for a stalled one whose back-off is over, each alone. A projector
        that cannot apply an event stops there and the stall is recorded
        (`projectors.stalls`); every other partition goes on."""
        now = time.monotonic()
        with self.lock:
            stalled = {part for part in partitions if part in self.stalled}
            alone = [
                part for part in partitions if part in stalled and self.stalled[part].due <= now
            ]
        together = [part for part in partitions if part not in stalled]
        applied = 0
        if together:
            try:
                applied += _catch_up(conn, together)
            except Exception:
                if conn.broken:
                    raise
                log.warning("a round failed; serving each of its partitions alone")
                alone, together = together + alone, []
        projected = list(together)
        for partition in alone:
            count = self._alone(conn, partition)
            if count is not None:
                projected.append(partition)
                applied += count
        return Round(projected, applied)

    def _alone(self, conn: psycopg.Connection[Any], partition: str) -> int | None:
        """Catch one partition up; on failure find and record the stalls. The events
        applied, or None while some projector is stalled there."""
        names = [projector.name for projector in PROJECTORS]
        try:
            applied = _catch_up(conn, [partition])
        except Exception:
            if conn.broken:
                raise
            found = self._isolate(conn, partition)
            if found is None:
                return None
            applied = 0
        else:
            found = []
        failed = {stall.projector for stall in found}
        stalls.clear(conn, partition, [name for name in names if name not in failed])
        if found:
            stalls.record(conn, found)
            self._back_off(partition, found)
            return None
        with self.lock:
            was = self.stalled.pop(partition, None)
        if was is not None:
            log.info("projection resumed", store=partition, failures=was.failures)
        return applied

    def _isolate(self, conn: psycopg.Connection[Any], partition: str) -> list[stalls.Stall] | None:
        """`isolate`, or None (the partition backed off all the same) if even that fails
        without naming an event: the other partitions of the round must still be served."""
        try:
            return isolate(conn, PROJECTORS, partition)
        except Exception as error:
            if conn.broken:
                raise
            # No traceback, no DETAIL: they may quote the event's data.
            error_class, message = stalls.describe_error(error)
            what = "could not find the event a projector fails on"
            log.error(what, store=partition, error_class=error_class, error=message)  # noqa: TRY400
            PROJECTION_FAILURES.labels("", partition).inc()
            self._back_off(partition, [])
            return None

    def _back_off(self, partition: str, found: list[stalls.Stall]) -> None:
        with self.lock:
            failures = self.stalled[partition].failures + 1 if partition in self.stalled else 1
            delay = min(BACKOFF_FIRST * 2 ** (failures - 1), BACKOFF_MAX)
            self.stalled[partition] = _Backoff(failures, time.monotonic() + delay)
        for stall in found:  # ids and the error only: never the event's data
            PROJECTION_FAILURES.labels(stall.projector, stall.partition).inc()
            log.error(
                "projection stalled: a projector cannot apply an event",
                projector=stall.projector,
                store=stall.partition,
                seq=stall.seq,
                position=stall.position,
                stream=stall.stream,
                type=stall.event_type,
                error_class=stall.error_class,
                error=stall.error,
                failures=failures,
                retry_in_seconds=delay,
            )

    def is_stalled(self, partition: str) -> bool:
        """Whether a projector is stalled in `partition` as far as this process knows."""
        with self.lock:
            return partition in self.stalled


def _catch_up(conn: psycopg.Connection[Any], partitions: list[str]) -> int:
    structlog.contextvars.bind_contextvars(partitions=partitions)
    applied = catch_up_partitions(conn, PROJECTORS, partitions)
    for name, count in applied.items():
        if count:
            EVENTS_PROJECTED.labels(name).inc(count)
    if any(applied.values()):
        log.debug("projected", **applied)
    return sum(applied.values())
