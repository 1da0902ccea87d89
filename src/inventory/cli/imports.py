"""`inventory import FILE.csv [--store S]`: the catalog and opening stock from a CSV file.

The same importer as `POST /v1/imports` (docs/import.md): the file is read twice, once
for its SHA-256 (the key of each row's outcome) and once to import it, never whole in
memory. The CLI runs as the operator with an admin's authority; its events name it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from psycopg_pool import AsyncConnectionPool

from inventory.cli.common import SERVER_ENV, add_command
from inventory.cli.progress import Progress
from inventory.domain.authority import Authority
from inventory.imports.csvfile import FileRefused
from inventory.imports.decisions import Scope
from inventory.imports.importer import Importer, Report, file_sha
from inventory.imports.rows import row_plan
from inventory.runtime.settings import ConfigurationError, Settings
from inventory.worker.broker import build_broker
from inventory.worker.wakeups import wake

CHUNK = 1 << 16
SHOWN_FAILURES = 50


def chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time."""
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            yield chunk


def estimate_rows(path: Path) -> int:
    """Physical lines less the header: the progress bar's total (quoted newlines aside)."""
    return max(sum(chunk.count(b"\n") for chunk in chunks(path)), 1)


async def import_file(
    primary_url: str, path: Path, store: str | None, *, err: TextIO = sys.stderr
) -> Report:
    """Import `path`, with a progress bar on `err`; the report of the run."""
    sha = file_sha(chunks(path))
    operator = getpass.getuser()
    actor = {"id": f"cli:{operator}", "kind": "cli", "name": operator, "role": "admin"}
    now = datetime.now(UTC)
    scope = Scope(store, Authority(role="admin", api_key=False), now, f"import {sha.hex()[:12]}")
    progress = Progress(estimate_rows(path), err, unit="rows")
    async with AsyncConnectionPool(primary_url, min_size=1, max_size=2, open=False) as pool:
        importer = Importer(pool, row_plan)
        report = await importer.run(
            chunks(path), sha=sha, scope=scope, actor=actor, progress=progress
        )
    print(file=err)
    return report


def print_report(report: Report, path: Path, out: TextIO) -> None:
    """The summary, then the bad rows with their line numbers."""
    print(
        f"{path}: {report.rows:,} rows, {report.rows - report.failed:,} landed, "
        f"{report.failed:,} failed; this run decided {report.decided:,} rows and appended "
        f"{report.events:,} events (sha256 {report.sha.hex()})",
        file=out,
    )
    for failure in report.failures[:SHOWN_FAILURES]:
        sku = "" if failure.sku is None else f" sku {failure.sku!r}:"
        print(f"  line {failure.line}:{sku} {failure.code}: {failure.message}", file=out)
    if report.failed > SHOWN_FAILURES:
        print(f"  ... and {report.failed - SHOWN_FAILURES:,} more", file=out)


def _run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file")
    if args.store is not None and not args.store.strip():
        raise ConfigurationError("--store must name a store")
    settings = Settings.from_env()
    try:
        report = asyncio.run(import_file(settings.primary_url, path, args.store))
    except FileRefused as refused:
        out = sys.stdout
        print(f"{path}: refused: {refused.code}: {refused.message}", file=out)
        return 1
    if report.events:
        # The projectors pick the events up at the next sweep anyway; this is sooner.
        build_broker(settings)
        wake(["", args.store], report.position)
    print_report(report, path, sys.stdout)
    return 1 if report.failed else 0


def add(commands: Any) -> None:
    """Add `inventory import` to the parser."""
    sub = add_command(
        commands,
        "import",
        "Import the catalog and opening stock from a CSV file (docs/import.md): a header "
        "row naming sku (required), name, unit, decimals, barcode, category, description, "
        "on_hand, unit_cost. New SKUs are registered, known ones updated, on_hand becomes "
        "a count at --store. Bad rows are listed with their line numbers while good rows "
        "land; importing the same file again changes nothing. Exits 1 when any row failed.",
        SERVER_ENV,
        _run,
    )
    sub.add_argument("file", metavar="FILE.csv", help="the CSV file (UTF-8)")
    sub.add_argument("--store", help="the store whose on_hand the file counts")
