"""Containment: after a partition's batch fails, find the projector and the event.

A batch applies every projector's events of a partition in one transaction, so a
failure says neither which projector nor which event. `isolate` catches each projector
up on the partition alone; one that fails goes through its next batch one event at a
time, commits the events before the one it cannot apply and stops there. Nothing is
skipped: the partition stays at that event, for that projector, until a fix lets it
through; the other projectors (and every other partition) go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from inventory.projectors.engine import (
    BATCH_SIZE,
    advance,
    lock_checkpoint,
    project_batch,
    read_events,
)
from inventory.projectors.stalls import Stall
from inventory.readmodels.projection import Projector, ReplicaEvent


def isolate(
    conn: psycopg.Connection[Any],
    projectors: Sequence[Projector],
    partition: str,
    *,
    batch_size: int = BATCH_SIZE,
) -> list[Stall]:
    """Catch each projector up on `partition` alone, as far as it goes; the stalls of
    those that stop at an event. None: the failure did not recur (a deadlock, say)."""
    stalls = []
    for projector in projectors:
        stall = _catch_up_alone(conn, projector, partition, batch_size)
        if stall is not None:
            stalls.append(stall)
    return stalls


def _catch_up_alone(
    conn: psycopg.Connection[Any], projector: Projector, partition: str, batch_size: int
) -> Stall | None:
    while True:
        try:
            count = project_batch(conn, projector, partition, batch_size)
        except Exception:
            if conn.broken:
                raise
            stall = _first_failing(conn, projector, partition, batch_size)
            if stall is not None:
                return stall
            continue  # one event at a time went through: on to the next batch
        if count < batch_size:
            return None


class _Failed(Exception):
    """An event's apply raised (the transaction is rolled back on the way out)."""

    def __init__(self, checkpoint: int, before: int, event: ReplicaEvent, error: Exception) -> None:
        super().__init__(str(error))
        self.checkpoint, self.before, self.event, self.error = checkpoint, before, event, error


def _first_failing(
    conn: psycopg.Connection[Any], projector: Projector, partition: str, batch_size: int
) -> Stall | None:
    """Apply the next batch one event at a time: all of it if every event applies;
    otherwise the events before the first that fails, which is returned as a stall."""
    try:
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
            checkpoint = lock_checkpoint(cur, projector.name, partition)
            if checkpoint is None:
                return None  # no events in the partition: nothing can fail
            events = read_events(cur, partition, checkpoint, batch_size)
            _one_by_one(cur, projector, checkpoint, events)
            if events:
                advance(cur, projector.name, partition, events)
    except _Failed as failed:
        if conn.broken:
            raise failed.error from None
        _apply_before(conn, projector, partition, failed)
        return Stall.of(projector.name, failed.event, failed.error)
    return None


def _one_by_one(
    cur: psycopg.Cursor[Any],
    projector: Projector,
    checkpoint: int,
    events: Sequence[ReplicaEvent],
) -> None:
    for index, event in enumerate(events):
        try:
            projector.apply(cur, [event])
        except Exception as error:
            raise _Failed(checkpoint, index, event, error) from error


def _apply_before(
    conn: psycopg.Connection[Any], projector: Projector, partition: str, failed: _Failed
) -> None:
    """Commit the events that applied before the failing one, unless another worker has
    moved the checkpoint meanwhile."""
    if not failed.before:
        return
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        if lock_checkpoint(cur, projector.name, partition) != failed.checkpoint:
            return
        events = read_events(cur, partition, failed.checkpoint, failed.before)
        events = [event for event in events if event.seq < failed.event.seq]
        if not events:
            return
        for event in events:  # as they applied before: one at a time
            projector.apply(cur, [event])
        advance(cur, projector.name, partition, events)
