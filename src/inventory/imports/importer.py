"""Import a CSV file: stream its records, validate them, land them batch by batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from inventory.domain.events import ALL_EVENTS
from inventory.eventstore.codec import Codec
from inventory.eventstore.store import EventStore
from inventory.imports import batch, outcomes
from inventory.imports.csvfile import BadRecord, Record, records
from inventory.imports.decisions import Scope
from inventory.imports.plan import RowOutcome, RowPlan

BATCH_ROWS = 500
"""Rows per transaction: big enough that a row costs little beyond its events, small
enough that a batch holds its streams' locks briefly (well under a second)."""

RETRIES = 5
Validate = Callable[[Record | BadRecord], RowPlan | RowOutcome]


@dataclass
class Report:
    """What an import run did: rows decided now, events appended, and the file's totals
    (rows and failures recorded for it, this run's and earlier runs')."""

    sha: bytes
    decided: int = 0
    events: int = 0
    rows: int = 0
    failed: int = 0
    failures: list[RowOutcome] = field(default_factory=list)
    position: int | None = None
    """The highest position of the last batch that appended events: once the replica has
    it, it has every event of the run (the batches commit one after another)."""


def file_sha(chunks: Iterable[bytes]) -> bytes:
    """The SHA-256 of the file's bytes, the key of its rows' outcomes."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.digest()


@dataclass
class Importer:
    """Imports files through the event store on `pool` (the primary), validating each row
    with `validate` (the API's rules: api/import_bodies.py)."""

    pool: AsyncConnectionPool[Any]
    validate: Validate
    batch_rows: int = BATCH_ROWS
    store: EventStore = field(default_factory=lambda: EventStore(Codec(ALL_EVENTS)))

    async def run(
        self,
        chunks: Iterable[bytes],
        *,
        sha: bytes,
        scope: Scope,
        actor: Mapping[str, Any],
        job: str | None = None,
        progress: Callable[[int], None] | None = None,
        committed: Callable[[int], None] | None = None,
    ) -> Report:
        """Import the file whose bytes `chunks` yields and whose SHA-256 is `sha`; raises
        FileRefused when its header is unusable. Safe to rerun: landed rows are skipped.
        `progress` is told the rows of each batch, `committed` the highest position of
        each batch that appended events."""
        report = Report(sha)
        rows = (self.validate(record) for record in records(chunks))
        for group in _batches(rows, self.batch_rows):
            metadata = batch.batch_metadata(actor, sha, job)
            decided, position = await self._apply(group, scope, sha, metadata)
            report.decided += len(decided)
            report.events += sum(outcome.events for outcome in decided)
            if position is not None:
                report.position = position
                if committed is not None:
                    committed(position)
            if progress is not None:
                progress(len(group))
        async with self.pool.connection() as conn:
            report.rows, report.failed = await outcomes.summary(conn, scope.store or "", sha)
            report.failures = await outcomes.failures(conn, scope.store or "", sha)
        return report

    async def _apply(
        self,
        group: list[RowPlan | RowOutcome],
        scope: Scope,
        sha: bytes,
        metadata: Mapping[str, Any],
    ) -> tuple[list[RowOutcome], int | None]:
        """One batch, rerun after a deadlock with a command locking the same streams."""
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.connection() as conn:
                    return await batch.apply(
                        self.store, conn, group, scope=scope, sha=sha, metadata=metadata
                    )
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == RETRIES:
                    raise
        raise AssertionError("unreachable")


def _batches(
    rows: Iterator[RowPlan | RowOutcome], size: int
) -> Iterator[list[RowPlan | RowOutcome]]:
    while group := list(islice(rows, size)):
        yield group
