"""One batch of rows in one transaction: lock their streams, decide each row, append, record."""

# A batch's rows are decided in file order against one context that advances row by row,
# so the same SKU twice in a file is two successive changes (the later row wins). Rows
# whose outcome is already recorded for this file are skipped under the file's advisory
# lock: re-importing, or resuming after a crash, appends nothing twice.

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from inventory.domain.context import Change, Context
from inventory.eventstore.decided import context_of, writes_of
from inventory.eventstore.store import EventStore
from inventory.imports import outcomes
from inventory.imports.decisions import Scope, decide_row, streams
from inventory.imports.outcomes import Conn
from inventory.imports.plan import RowOutcome, RowPlan


async def apply(
    store: EventStore,
    conn: Conn,
    rows: Sequence[RowPlan | RowOutcome],
    *,
    scope: Scope,
    sha: bytes,
    metadata: Mapping[str, Any],
) -> tuple[list[RowOutcome], int | None]:
    """Land the batch's good rows and record every row's outcome, in one transaction;
    the outcomes of the rows this call decided (not those recorded before), and the
    highest position it appended (None: no event)."""
    key = scope.store or ""
    plans = [row for row in rows if isinstance(row, RowPlan)]
    write: set[str] = set()
    read: set[str] = set()
    for plan in plans:
        wrote, reads = streams(plan, scope)
        write |= wrote
        read |= reads
    async with store.transaction(conn) as tx:
        tx.lock(sorted(write), sorted(read - write))
        locked, shared = await tx.heads()
        known = await outcomes.lock_and_known(conn, key, sha, [row.line for row in rows])
        before = context_of(locked, shared, write | read)
        decided, changes, after = _decide(rows, known, before, scope)
        if changes:
            tx.append(writes_of(changes, before, after), metadata)
        await outcomes.record(conn, key, sha, decided)
        recorded = await tx.commit()
    return decided, max((event.position for event in recorded), default=None)


def _decide(
    rows: Sequence[RowPlan | RowOutcome], known: set[int], context: Context, scope: Scope
) -> tuple[list[RowOutcome], list[Change], Context]:
    """Each row not decided before, in file order, against the context as the rows before
    it left it."""
    decided: list[RowOutcome] = []
    changes: list[Change] = []
    for row in rows:
        if row.line in known:
            continue
        if isinstance(row, RowOutcome):
            decided.append(row)
            continue
        outcome, own = decide_row(row, context, scope)
        decided.append(outcome)
        changes += own
        context = context.advanced(own)
    return decided, changes, context


def batch_metadata(actor: Mapping[str, Any], sha: bytes, job: str | None) -> dict[str, Any]:
    """The metadata of a batch's events: who imported, from which file (and job)."""
    return {
        "actor": dict(actor),
        "command_id": str(uuid.uuid4()),
        "idempotency_key": None,
        "correlation_id": job,
        "causation_id": None,
        "request_id": None,
        "import": {"sha256": sha.hex(), "job": job},
    }
