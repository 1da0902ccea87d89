"""Bulk import: rows/s through the importer beside COPY of the same file (the floor).

    uv run python bench/import.py [--rows 1000000] [--quick]

Starts an embedded topology (durable) in a temporary home, opens a store, writes a CSV
of `--rows` new SKUs (sku, name, unit, decimals, barcode, category, description, on_hand,
unit_cost: every row registers a product and counts it), and imports it with the importer
the CLI uses (`inventory import FILE --store S`: one transaction per 500 rows, each row's
outcome recorded). The floor, same run, same primary: `COPY` of the same file into a
plain logged table of nine text columns (no validation, no events, no indexes).
`--quick`: 20,000 rows (the issue's goal: under a minute here).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from inventory.cli.imports import import_file
from inventory.domain.commands import OpenStore
from inventory.runtime.embedded import EmbeddedTopology
from inventory.service import CommandService
from inventory.service.outcome import Actor

STORE = "bench1"
HEADER = "sku,name,unit,decimals,barcode,category,description,on_hand,unit_cost\n"
GOAL_SECONDS_20K = 60.0


def write_csv(path: Path, rows: int) -> None:
    """`rows` distinct SKUs, written in blocks (the file, not the list, holds them)."""
    with path.open("w", newline="") as out:
        out.write(HEADER)
        block: list[str] = []
        for n in range(rows):
            block.append(
                f"BENCH-{n:07d},Product {n},each,0,{4006381000000 + n},cat{n % 40},"
                f"Bench item {n},{n % 97},{n % 13}.25\n"
            )
            if len(block) == 10_000:
                out.write("".join(block))
                block = []
        out.write("".join(block))


class _Plain:
    def accepted(self, decision: Any) -> tuple[int, bytes]:
        return 201, b""

    def rejected(self, error: Any) -> tuple[int, bytes]:
        raise error


async def open_store(primary_url: str) -> None:
    """The store the file counts at."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(primary_url, min_size=1, open=False)
    async with pool:
        command = OpenStore(store_id=STORE, name="Bench", now=datetime.now(UTC))
        actor = Actor(id="bench", kind="system", name="bench", role="admin")
        await CommandService(pool).handle(command, actor, _Plain())


def copy_floor(admin_url: str, path: Path) -> float:
    """Seconds to COPY the file into a plain table on the same primary."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS import_floor")
        columns = ", ".join(f"{name} text" for name in HEADER.strip().split(","))
        conn.execute(f"CREATE TABLE import_floor ({columns})")
        started = time.perf_counter()
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY import_floor FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 16):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE import_floor")
    return elapsed


def result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One BENCH-RESULT line (bench/run.py parses them)."""
    line = {"bench": "import", "metric": metric, "value": value, "goal": goal, "met": met}
    print("BENCH-RESULT " + json.dumps(line))


def run(env: dict[str, str], path: Path, rows: int) -> None:
    """Import, then COPY; print the table and the headline figures."""
    asyncio.run(open_store(env["INVENTORY_PRIMARY_URL"]))
    started = time.perf_counter()
    report = asyncio.run(import_file(env["INVENTORY_PRIMARY_URL"], path, STORE, err=io.StringIO()))
    seconds = time.perf_counter() - started
    assert (report.rows, report.failed, report.events) == (rows, 0, 2 * rows), report
    floor = copy_floor(env["INVENTORY_PRIMARY_ADMIN_URL"], path)
    rate, floor_rate = rows / seconds, rows / floor
    size = path.stat().st_size / 2**20
    print(f"file: {rows:,} rows, {size:.1f} MiB; {report.events:,} events appended")
    print(f"{'path':<34} {'seconds':>9} {'rows/s':>10}")
    print(f"{'importer (inventory import)':<34} {seconds:>9.2f} {rate:>10,.0f}")
    print(f"{'COPY into a plain table (floor)':<34} {floor:>9.2f} {floor_rate:>10,.0f}")
    print(f"importer / COPY: {rate / floor_rate:.4f}")
    if rows == 20_000:
        goal = f"< {GOAL_SECONDS_20K:.0f} s"
        result("20,000 rows seconds", round(seconds, 2), goal, seconds < GOAL_SECONDS_20K)
    result(f"import rows/s ({rows:,} rows)", round(rate), "", None)
    result("import / COPY rows/s", round(rate / floor_rate, 4), "", None)


def main() -> None:
    """Parse the flags, start the servers, run, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (1,000,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 rows (about 30 s)")
    args = parser.parse_args()
    rows = 20_000 if args.quick else args.rows
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    try:
        env = topology.start()
        path = root / "import.csv"
        write_csv(path, rows)
        run(env, path, rows)
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
