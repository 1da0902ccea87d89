"""The streamed movement report: time and API memory for a year of a large store.

    uv run python bench/movements_report.py [--skus 10000] [--days 365] [--types 4] [--quick]

Starts a non-durable embedded topology and one `inventory serve`, fills `daily_movements`
with one store's year (skus x days x types rows, straight into the table), then
downloads `GET /v1/reports/movements?store=...` as CSV and as JSON, sampling the API
process's RSS every 20 ms. Baseline: the same query's rows fetched over one psycopg
connection (`COPY (...) TO STDOUT`), the floor for any HTTP answer. `--quick`: 1,000 SKUs
x 90 days. Goal: each download within 2x of the baseline, the API's RSS growth flat.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
import psycopg

from inventory.readmodels.daily_movements import MovementQuery
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role

STORE = "bench"
MEMORY_GOAL = 8.0  # MiB of API RSS growth: "flat", a few MiB however many rows
FILL = """
INSERT INTO daily_movements (store, day, sku, type, count, quantity)
SELECT %s, date '2025-01-01' + d, 'SKU-' || s, 'stock.t' || t, 3, 7.5
FROM generate_series(0, %s - 1) AS d, generate_series(1, %s) AS s, generate_series(1, %s) AS t
"""


def fill(replica_admin_url: str, skus: int, days: int, types: int) -> float:
    """Insert the rows; returns the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(replica_admin_url, autocommit=True) as conn:
        conn.execute(FILL, (STORE, days, skus, types))
        conn.execute("ANALYZE daily_movements")
    return time.monotonic() - started


def baseline(replica_url: str) -> tuple[float, int]:
    """Seconds and bytes of COPY of the report query to the client."""
    query = MovementQuery([STORE]).sql().as_string(None)
    started, size = time.monotonic(), 0
    copy_sql = f"COPY ({query}) TO STDOUT WITH (FORMAT csv)"
    with psycopg.connect(replica_url) as conn, conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for chunk in copy:
            size += len(chunk)
    return time.monotonic() - started, size


def cursor_only(replica_url: str) -> float:
    """Seconds to read the report through a server-side cursor (the alternative to COPY)."""
    query = MovementQuery([STORE]).sql()
    started = time.monotonic()
    with psycopg.connect(replica_url) as conn, conn.transaction():
        conn.execute("SET LOCAL cursor_tuple_fraction = 1.0")
        with conn.cursor("bench") as cur:
            cur.execute(query)
            while cur.fetchmany(1000):
                pass
    return time.monotonic() - started


def download(url: str, key: str, output: str, pid: int) -> tuple[float, float, int, float]:
    """(seconds to first byte, total seconds, bytes, peak RSS growth in MiB)."""
    process, peak, stop = psutil.Process(pid), [0], threading.Event()
    base = process.memory_info().rss

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started, first, size = time.monotonic(), 0.0, 0
    params = {"store": STORE, "format": output}
    headers = {"Authorization": f"Bearer {key}", "Accept-Encoding": "identity"}
    with httpx.stream("GET", url, params=params, headers=headers, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            first = first or time.monotonic() - started
            size += len(chunk)
    total = time.monotonic() - started
    stop.set()
    sampler.join()
    return first, total, size, (peak[0] - base) / 2**20


def wait_live(url: str, timeout: float = 60) -> None:
    """Poll /health/live until the API answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the API did not start")


def run(args: argparse.Namespace, root: Path) -> None:
    topology = EmbeddedTopology(root / "home", durable=False)
    env = topology.start()
    api = None
    try:
        settings = Settings.from_env({**os.environ, **env})
        took = fill(env["INVENTORY_REPLICA_ADMIN_URL"], args.skus, args.days, args.types)
        print(f"filled {args.skus * args.days * args.types:,} rows in {took:.1f} s")
        key = bootstrap.create_key(settings.primary_url, "bench", Role.ADMIN, ["*"]).key
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "inventory", "serve", "--port", str(port)],
            env={**os.environ, **env, "INVENTORY_LOG_LEVEL": "WARNING"},
        )
        url = f"http://127.0.0.1:{port}"
        wait_live(url)
        seconds, size = baseline(settings.replica_url)
        print(f"baseline COPY: {seconds:.2f} s, {size / 2**20:.1f} MiB")
        print(f"server-side cursor, no HTTP: {cursor_only(settings.replica_url):.2f} s")
        for output in ("csv", "json"):
            first, total, size, grew = download(f"{url}/v1/reports/movements", key, output, api.pid)
            print(
                f"{output}: first byte {first:.2f} s, total {total:.2f} s "
                f"({total / seconds:.1f}x baseline), {size / 2**20:.1f} MiB, "
                f"API RSS peak growth {grew:.1f} MiB"
            )
            result(
                f"{output} download / COPY", round(total / seconds, 2), "<= 2", total <= 2 * seconds
            )
            goal = f"<= {MEMORY_GOAL:.0f}"
            result(f"{output} API RSS growth MiB", round(grew, 1), goal, grew <= MEMORY_GOAL)
    finally:
        if api is not None:
            api.terminate()
            api.wait(30)
        topology.stop()


def result(metric: str, value: float, goal: str, met: bool) -> None:
    """One headline figure, in the line bench/run.py reads."""
    line = {"bench": "movements_report", "metric": metric, "value": value}
    print("BENCH-RESULT " + json.dumps({**line, "goal": goal, "met": met}), flush=True)


def main() -> None:
    """Parse the arguments, run in a temporary folder, remove it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--types", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="1,000 SKUs x 90 days")
    args = parser.parse_args()
    if args.quick:
        args.skus, args.days = 1_000, 90
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    try:
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
