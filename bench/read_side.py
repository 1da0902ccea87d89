"""Read side: rebuild time of every read model, and query latency at 64 readers.

    uv run python bench/read_side.py [--stores 20] [--skus 500] [--events 200000]
                                     [--readers 64] [--seconds 10] [--quick]

Starts a non-durable embedded topology in a temporary home, appends `--events` stock
events (receipts, sales, some counts and reorder points) over stores x SKUs straight
through `EventStore.append`, waits for the replica, then:

(a) rebuilds every projector (`inventory projections rebuild NAME`, the online path),
    beside the same server's `INSERT ... SELECT` of the events copy into a scratch table
    (goal: rebuild within 5x of that copy);
(c) runs `inventory serve` and measures p50/p99 of the store stock list, the search
    (the four words of SEARCH_WORDS in turn, then the broad and the selective ones
    apart) and the movement report (a store's first week, JSON; one SKU across every
    store and day) with `--readers` concurrent keep-alive clients, beside
    `/health/live` (the HTTP stack's floor) at the same concurrency.

It prints `BENCH-RESULT {json}` lines for bench/run.py: the rebuild over the copy, and
each query's p99. `--quick`: 60,000 events and 2 s per query kind (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg

from inventory.cli import projections as admin
from inventory.domain import events as ev
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role

GOAL = 5.0
# Every product's name holds "widget" and "blue" (a broad search: every product matches);
# "SKU001" matches 100 SKUs (SKU00100-SKU00199), "4000000" the barcodes of the first 1,000
# products (every product up to --skus 1000).
SEARCH_WORDS = ("widget", "SKU001", "4000000", "blue")
BROAD_WORDS = ("widget", "blue")
HISTORY_DAYS = 30  # the events start this many days ago, a second apart
STREAMS_PER_COMMIT = 100
EVENTS_PER_STREAM = 10


def stock_event(rng: random.Random, store: str, sku: str, at: datetime) -> ev.Event:
    """Mostly sales and receipts; now and then a count or a reorder point."""
    roll = rng.random()
    if roll < 0.45:
        return ev.StockSold(
            store_id=store,
            sku=sku,
            occurred_at=at,
            quantity=Decimal(1),
            sale_id=f"{rng.getrandbits(48):x}",
        )
    if roll < 0.9:
        return ev.StockReceived(store_id=store, sku=sku, occurred_at=at, quantity=Decimal(2))
    if roll < 0.97:
        return ev.StockCounted(store_id=store, sku=sku, occurred_at=at, counted=Decimal(20))
    return ev.StockReorderPointSet(store_id=store, sku=sku, occurred_at=at, minimum=Decimal(5))


async def load(url: str, stores: int, skus: int, total: int) -> None:
    """Stores, products, then `total` stock events in commits of 1,000."""
    store = EventStore(Codec(ev.ALL_EVENTS))
    rng = random.Random(1)
    names = [f"b{i}" for i in range(stores)]
    codes = [f"SKU{i:05d}" for i in range(skus)]
    start = datetime.now(UTC) - timedelta(days=HISTORY_DAYS)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        catalog = [
            StreamWrite(f"store-{s}", [NewEvent(ev.StoreOpened(store_id=s, name=s), s)])
            for s in names
        ]
        catalog += [
            StreamWrite(
                f"product-{k}",
                [
                    NewEvent(
                        ev.ProductRegistered(
                            sku=k, name=f"Product {k} blue widget", barcode=f"40{i:08d}"
                        )
                    )
                ],
            )
            for i, k in enumerate(codes)
        ]
        for begin in range(0, len(catalog), 500):
            await store.append(conn, catalog[begin : begin + 500])
        written, tick = 0, 0
        while written < total:
            writes = []
            for _ in range(STREAMS_PER_COMMIT):
                s, k = rng.choice(names), rng.choice(codes)
                batch = []
                for _ in range(EVENTS_PER_STREAM):
                    tick += 1
                    at = start + timedelta(seconds=tick)
                    batch.append(NewEvent(stock_event(rng, s, k, at), s, k, at))
                writes.append(StreamWrite(f"stock-{s}-{k}", batch, ANY))
            await store.append(conn, _merge(writes))
            written += STREAMS_PER_COMMIT * EVENTS_PER_STREAM


def _merge(writes: list[StreamWrite]) -> list[StreamWrite]:
    """One write per stream (a commit may pick a stream twice)."""
    merged: dict[str, list[NewEvent]] = {}
    for write in writes:
        merged.setdefault(write.stream, []).extend(write.events)
    return [StreamWrite(stream, found, ANY) for stream, found in merged.items()]


def wait_replicated(settings: Settings) -> int:
    """The events count, once the replica has every event of the primary."""
    query = "SELECT count(*) FROM events"
    with psycopg.connect(settings.primary_url) as primary:
        row = primary.execute(query).fetchone()
    expected = row[0] if row else 0
    with psycopg.connect(settings.replica_url, autocommit=True) as replica:
        while replica.execute(query).fetchone() != (expected,):
            time.sleep(0.2)
    return int(expected)


def copy_baseline(settings: Settings) -> float:
    """Seconds for `INSERT ... SELECT` of the events copy into a scratch table."""
    with psycopg.connect(settings.replica_admin_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS scratch_events")
        conn.execute(
            "CREATE TABLE scratch_events AS SELECT position, id, stream, version, type, store,"
            " sku, data, metadata, occurred_at, recorded_at, seq, partition FROM events"
            " WITH NO DATA"
        )
        started = time.monotonic()
        conn.execute(
            "INSERT INTO scratch_events SELECT position, id, stream, version, type,"
            " store, sku, data, metadata, occurred_at, recorded_at, seq, partition"
            " FROM events"
        )
        elapsed = time.monotonic() - started
        conn.execute("DROP TABLE scratch_events")
    return elapsed


def rebuild_all(settings: Settings, each: bool) -> dict[str, float]:
    """Seconds for an online rebuild of every projector in one pass (`inventory
    projections rebuild --all`), and with `each` of each projector alone."""
    times = {}
    if each:
        for projector in PROJECTORS:
            started = time.monotonic()
            admin.rebuild(settings.replica_url, projector.name, out=io.StringIO())
            times[projector.name] = time.monotonic() - started
    started = time.monotonic()
    admin.rebuild(settings.replica_url, [p.name for p in PROJECTORS], out=io.StringIO())
    times["all"] = time.monotonic() - started
    return times


async def latencies(
    base: str, paths: list[str], key: str, readers: int, seconds: float, *, warmup: float = 2.0
) -> list[float]:
    """Per-request seconds of `readers` keep-alive clients cycling through `paths`, after
    `warmup` seconds not counted (the API's pool opens its connections on demand)."""
    headers = {"Authorization": f"Bearer {key}"}
    counted = time.monotonic() + warmup
    deadline = counted + seconds
    found: list[float] = []

    async def reader(index: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            n = index
            while time.monotonic() < deadline:
                began = time.monotonic()
                response = await client.get(paths[n % len(paths)])
                if began >= counted:
                    found.append(time.monotonic() - began)
                assert response.status_code == 200, response.text
                n += 1

    await asyncio.gather(*(reader(i) for i in range(readers)))
    return found


def bench_result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One headline figure for bench/run.py."""
    found = {"bench": "read_side", "metric": metric, "value": round(value, 2)}
    print("BENCH-RESULT " + json.dumps({**found, "goal": goal, "met": met}))


def summary(samples: list[float]) -> str:
    """p50 / p99 in ms and the request rate."""
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49] * 1000:7.1f} ms  p99 {cuts[98] * 1000:7.1f} ms  n={len(samples)}"


def serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`inventory serve` on a free port, live."""
    port = free_port()
    with log.open("ab") as output:
        command = [sys.executable, "-m", "inventory", "serve", "--port", str(port)]
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"inventory serve did not start:\n{log.read_text()}")


def queries(settings: Settings, env: dict[str, str], root: Path, args: argparse.Namespace) -> None:
    """(c): `inventory serve`, then each query kind's latency at `--readers`."""
    key = bootstrap.create_key(settings.primary_url, "bench", Role.ADMIN, ["*"]).key
    process, base = serve(env, root / "api.log")
    try:
        stock = [f"/v1/stores/b{i % args.stores}/stock?limit=100" for i in range(args.stores)]
        search = {q: f"/v1/search?q={q}&limit=20" for q in SEARCH_WORDS}
        broad = [search[q] for q in BROAD_WORDS]
        selective = [search[q] for q in SEARCH_WORDS if q not in BROAD_WORDS]
        first = (datetime.now(UTC) - timedelta(days=HISTORY_DAYS)).date()
        week = f"from={first}&to={first + timedelta(days=6)}"
        store_week = [f"/v1/reports/movements?store=b{i}&{week}" for i in range(args.stores)]
        sku = [f"/v1/reports/movements?sku=SKU{i:05d}" for i in range(0, args.skus, 7)]
        print(f"\n(c) latency at {args.readers} concurrent readers, {args.seconds:.0f} s each")
        for label, paths in (
            ("health/live", ["/health/live"]),
            ("stock list", stock),
            ("search", list(search.values())),
            ("  broad", broad),
            ("  selective", selective),
            ("movements, store week", store_week),
            ("movements, sku", sku),
        ):
            samples = asyncio.run(latencies(base, paths, key, args.readers, args.seconds))
            print(f"    {label:<21} {summary(samples)}")
            p99 = statistics.quantiles(samples, n=100)[98] * 1000
            name = f"search, {label.strip()}" if label.startswith("  ") else label
            bench_result(f"{name} p99 ms, {args.readers} readers", p99, "", None)
    finally:
        process.terminate()
        process.wait(30)


def main() -> int:
    """Run the benchmark and print the figures beside their baselines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--skus", type=int, default=500)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--each", action="store_true", help="also rebuild each projector alone")
    parser.add_argument("--skip-queries", action="store_true", help="(a) only")
    parser.add_argument("--quick", action="store_true", help="60,000 events, 2 s per query")
    args = parser.parse_args()
    if args.quick:
        args.events, args.seconds = min(args.events, 60_000), min(args.seconds, 2.0)
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=False)
    try:
        env = {**topology.start(), "INVENTORY_RATE_LIMIT_ADMIN": "100000000/60"}
        settings = Settings.from_env({**os.environ, **env})
        started = time.monotonic()
        asyncio.run(load(settings.primary_url, args.stores, args.skus, args.events))
        count = wait_replicated(settings)
        print(f"loaded {count:,} events in {time.monotonic() - started:.1f} s")
        baseline = copy_baseline(settings)
        times = rebuild_all(settings, args.each)
        rebuild = times.pop("all")
        print("\n(a) rebuild of every read model vs INSERT ... SELECT of the events copy")
        for name, seconds in times.items():
            print(f"    {name:<14} {seconds:8.2f} s  (alone)")
        print(
            f"    {'all, one pass':<14} {rebuild:8.2f} s   baseline copy {baseline:6.2f} s   "
            f"ratio {rebuild / baseline:5.1f}x  (goal <= {GOAL:.0f}x)"
        )
        ratio = rebuild / baseline
        goal = f"<= {GOAL:.0f}x"
        bench_result(f"rebuild --all / copy ({count:,} events)", ratio, goal, ratio <= GOAL)
        if args.skip_queries:
            return 0
        queries(settings, env, root, args)
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
