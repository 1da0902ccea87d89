"""Event history on the replica's events copy: pages by `seq`, streams by `version`, exports.

`seq` is filled by the subscription's apply worker, which applies the primary's
transactions one at a time in commit order (the subscription has `streaming = off`, so
no parallel apply). A seq therefore becomes visible only after every smaller one: a
reader that resumes with `seq > last seen` never skips an event that commits later.

Table: the events copy (projections/0002_events.sql; indexes 0010_history.sql,
0024_events_type_seq.sql), filled by the subscription, not by a projector. Pages and
exports return rows as tuples in COLUMNS / EXPORT_COLUMNS order: the API makes each its
wire Struct once, and an export streams them to a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

COLUMNS = sql.SQL(
    "seq, position, stream, version, type, store, sku, occurred_at, recorded_at, data, metadata,"
    " chain"
)
EXPORT_COLUMNS = sql.SQL(
    "seq, position, id, stream, version, type, store, sku, occurred_at, recorded_at,"
    " data::text, metadata::text, chain"
)

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events a history page shows.

    `partitions`: None for every store and the store-less events; otherwise only these
    partitions (store ids; '' names the events that belong to no store).
    """

    partitions: list[str] | None = None
    sku: str | None = None
    type: str | None = None

    def where(self, after: int) -> sql.Composed:
        """The WHERE clause, built from the filters given (a plan for each shape)."""
        parts = [sql.SQL("seq > {}").format(sql.Literal(after))]
        if self.partitions is not None:
            parts.append(sql.SQL("partition = ANY({})").format(sql.Literal(self.partitions)))
        if self.sku is not None:
            parts.append(sql.SQL("sku = {}").format(sql.Literal(self.sku)))
        if self.type is not None:
            parts.append(sql.SQL("type = {}").format(sql.Literal(self.type)))
        return sql.SQL(" AND ").join(parts)


def page_query(event_filter: EventFilter, after: int, limit: int) -> sql.Composed:
    """Up to `limit` events after `after`, ascending seq."""
    if event_filter.partitions is not None and event_filter.sku is None:
        return _per_partition(event_filter, after, limit)
    return sql.SQL("SELECT {} FROM events WHERE {} ORDER BY seq LIMIT {}").format(
        COLUMNS, event_filter.where(after), sql.Literal(limit)
    )


def _per_partition(event_filter: EventFilter, after: int, limit: int) -> sql.Composed:
    # One (partition, seq) index range per store, merged: a scan of the global seq index
    # filtered by store would read every other store's events to find a small store's.
    inner = EventFilter(None, None, event_filter.type).where(after)
    return sql.SQL(
        "SELECT {columns} FROM unnest({parts}::text[]) AS p(part) CROSS JOIN LATERAL"
        " (SELECT {columns} FROM events WHERE partition = p.part AND {inner}"
        " ORDER BY seq LIMIT {limit}) AS e ORDER BY seq LIMIT {limit}"
    ).format(
        columns=COLUMNS,
        parts=sql.Literal(event_filter.partitions),
        inner=inner,
        limit=sql.Literal(limit),
    )


async def page(
    conn: psycopg.AsyncConnection[Any], event_filter: EventFilter, after: int, limit: int
) -> list[Row]:
    """One page of history (columns as COLUMNS names them)."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(page_query(event_filter, after, limit))
    return await cur.fetchall()


STREAM = sql.SQL(
    "SELECT {} FROM events WHERE stream = %s AND version >= %s ORDER BY version LIMIT %s"
).format(COLUMNS)
STREAM_EXISTS = "SELECT 1 FROM events WHERE stream = %s LIMIT 1"


async def stream_page(
    conn: psycopg.AsyncConnection[Any], stream: str, from_version: int, limit: int
) -> list[Row] | None:
    """The stream's events from `from_version` in version order; None if it has none."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(STREAM, (stream, from_version, limit))
    rows = await cur.fetchall()
    if rows:
        return rows
    await cur.execute(STREAM_EXISTS, (stream,))
    return [] if await cur.fetchone() else None


EXPORT_WHERE = sql.SQL("partition = %s AND occurred_at >= %s AND occurred_at < %s")


@dataclass(frozen=True, slots=True)
class ExportRange:
    """A store's events whose business time lies in [start, end)."""

    store: str
    start: datetime
    end: datetime

    @property
    def params(self) -> tuple[str, datetime, datetime]:
        """Query parameters for EXPORT_WHERE."""
        return (self.store, self.start, self.end)


def export_count(conn: psycopg.Connection[Any], span: ExportRange) -> int:
    """How many events the export will write (for the progress bar)."""
    query = sql.SQL("SELECT count(*) FROM events WHERE {}").format(EXPORT_WHERE)
    row = conn.execute(query, span.params).fetchone()
    return int(row[0]) if row else 0


def export_rows(
    conn: psycopg.Connection[Any], span: ExportRange, batch: int = 2000
) -> Iterator[list[Row]]:
    """The range's events in seq order, `batch` rows at a time, from a server-side cursor
    (so memory stays constant however many events the range holds)."""
    query = sql.SQL("SELECT {} FROM events WHERE {} ORDER BY seq").format(
        EXPORT_COLUMNS, EXPORT_WHERE
    )
    with conn.transaction(), conn.cursor("events_export", row_factory=tuple_row) as cur:
        cur.itersize = batch
        cur.execute(query, span.params)
        while rows := cur.fetchmany(batch):
            yield rows


OUTSIDE = "SELECT 1 FROM events WHERE stream = %s AND partition <> ALL(%s::text[]) LIMIT 1"


async def has_events_outside(
    conn: psycopg.AsyncConnection[Any], stream: str, partitions: list[str]
) -> bool:
    """Whether any event of `stream` lies outside `partitions`."""
    cursor = await conn.execute(OUTSIDE, (stream, partitions))
    return await cursor.fetchone() is not None


async def copied_position(conn: psycopg.AsyncConnection[Any]) -> int:
    """The highest position in the events copy: how far the history reaches (a hint, as
    every `X-Read-Position` is: positions are not commit-ordered). The primary key answers."""
    cursor = await conn.execute("SELECT coalesce(max(position), 0) FROM events")
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
