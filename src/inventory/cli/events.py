"""`inventory events export`: a store's events in a time range as NDJSON, in seq order.

Rows come from a server-side cursor a batch at a time and each stored JSON document is
copied as it is, so memory stays flat however long the range. A file is written under a
temporary name and renamed at the end: an interrupted export leaves no partial file.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import msgspec
import psycopg

from inventory.cli.common import SERVER_ENV, actions, add_command
from inventory.cli.progress import Progress
from inventory.readmodels.history import ExportRange, Row, export_count, export_rows
from inventory.runtime.settings import ConfigurationError, Settings


class ExportedEvent(msgspec.Struct, frozen=True):
    """One NDJSON line: the history fields of `GET /v1/events`, the event's id and its
    chain (what ops/verify_chain.py needs to recompute the chain offline)."""

    seq: int
    position: int
    id: uuid.UUID
    stream: str
    version: int
    type: str
    store: str | None
    sku: str | None
    occurred_at: datetime
    recorded_at: datetime
    data: msgspec.Raw
    metadata: msgspec.Raw
    chain: str | None


def parse_time(text: str) -> datetime:
    """An RFC 3339 time, or a date (its midnight UTC); naive times are UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time or a date") from None
    if len(text) == 10:  # a bare date
        parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _line(encoder: msgspec.json.Encoder, row: Row) -> bytes:
    seq, position, id_, stream, version, type_, store, sku, occurred, recorded = row[:10]
    data, meta, chain = row[10:]
    event = ExportedEvent(
        seq,
        position,
        id_,
        stream,
        version,
        type_,
        store,
        sku,
        occurred,
        recorded,
        msgspec.Raw(data.encode()),
        msgspec.Raw(meta.encode()),
        chain,
    )
    return encoder.encode(event) + b"\n"


def write_events(
    conn: psycopg.Connection[object], span: ExportRange, out: BinaryIO, progress: Progress
) -> int:
    """Write the range's events to `out`; returns how many."""
    encoder = msgspec.json.Encoder()
    written = 0
    for rows in export_rows(conn, span):
        out.write(b"".join(_line(encoder, row) for row in rows))
        written += len(rows)
        progress(len(rows))
    return written


def export(
    replica_url: str, span: ExportRange, output: str | None, err: TextIO = sys.stderr
) -> int:
    """Export to `output` (a file path) or stdout; a progress bar on `err`. Exit code 0."""
    with psycopg.connect(replica_url) as conn:
        progress = Progress(export_count(conn, span), err)
        if output is None:
            written = write_events(conn, span, sys.stdout.buffer, progress)
            sys.stdout.buffer.flush()
        else:
            target = Path(output)
            partial = target.with_name(f".{target.name}.partial")
            with partial.open("wb") as out:
                written = write_events(conn, span, out, progress)
                out.flush()
                os.fsync(out.fileno())
            partial.replace(target)
    print(f"\nexported {written} events of {span.store}", file=err)
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        span = ExportRange(args.store, parse_time(args.start), parse_time(args.end))
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    return export(Settings.from_env().replica_url, span, args.output)


def add(commands: Any) -> None:
    """Add `inventory events` to the parser."""
    events = add_command(
        commands,
        "events",
        "Export a store's events from the replica: `export` writes those whose occurred_at "
        "lies in [--from, --to) as NDJSON in seq order, with a progress bar on stderr.",
        SERVER_ENV,
        _run,
    )
    export_events = actions(events).add_parser("export", help="NDJSON of a store's events")
    export_events.add_argument("--store", required=True, help="the store id")
    export_events.add_argument("--from", dest="start", required=True, help="RFC 3339 or date")
    export_events.add_argument("--to", dest="end", required=True, help="RFC 3339 or date")
    export_events.add_argument("--output", help="file to write (default: stdout)")
