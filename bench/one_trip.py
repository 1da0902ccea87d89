"""The command service's one-trip path beside its locked path, in one process, side by side.

    uv run python bench/one_trip.py [--seconds 5] [--rounds 3] [--tasks 64] [--skus 1000]
                                     [--quick]

bench/commands.py measures sales over HTTP; this measures the command service alone, so
the round trips a sale costs are not lost in the HTTP stack's noise. Starts a durable
embedded topology, opens the pools an API process opens, stocks `--skus` items plus a hot
one in one store, and sends single-line sales (a new sale id and Idempotency-Key each)
through `CommandService.handle` from `--tasks` concurrent tasks for `--seconds`, rounds
interleaving:
  locked    no head cache: every command takes the locked path (two round trips), as
            before migrations/0096;
  one trip  decided on the heads this process cached, checked and written by
            command_once in one round trip when they are current, each on its own;
  batched   the default: the same, a store's commands that arrive while one batch is in
            flight sent together by command_batch (group commit, migrations/0102);
each on `many` (a random SKU) and `hot` (one SKU, every sale on one stream). Printed per
run: sales per second, p99, CPU ms per sale of this process (the API's share of a sale,
without HTTP) and of the primary (postmaster and backends), and the share of sales the
one-trip path answered (its hit rate), and the mean batch size. `--quick`: 200 SKUs, 1 round of 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import psutil
from psycopg_pool import AsyncConnectionPool

from inventory.domain.commands import (
    OpenStore,
    ReceiptLine,
    ReceiveStock,
    RecordSale,
    RegisterProduct,
)
from inventory.domain.errors import CommandRejected
from inventory.domain.events import Line
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.service import Actor, CommandService, Decision, Idempotency
from inventory.service.cache import HeadCache
from inventory.wiring import open_resources
from sale_floor import tree_cpu  # bench/ is on sys.path as a script's folder

STORE, HOT = "bench", "HOT"
ACTOR = Actor(id="user:bench", kind="user", name="bench", role="admin", ip="127.0.0.1")


class Responder:
    """The API's shape in miniature: the result as JSON, the refusal's code."""

    def accepted(self, decision: Decision) -> tuple[int, bytes]:
        return 201, msgspec.json.encode(decision.result)

    def rejected(self, error: CommandRejected) -> tuple[int, bytes]:
        return 409, msgspec.json.encode({"code": error.code})


@dataclass
class Run:
    """What one run of one mode on one load saw."""

    seconds: float = 0.0
    cpu: float = 0.0
    primary_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    hits: int = 0
    refreshed: int = 0
    batches: int = 0
    batched: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds


def now() -> datetime:
    return datetime.now(UTC)


async def _stock(service: CommandService, skus: list[str]) -> None:
    opened = OpenStore(store_id=STORE, name=STORE, now=now())
    await service.handle(opened, ACTOR, Responder(), Idempotency.of("open", b""))
    gate = asyncio.Semaphore(16)

    async def one(sku: str) -> None:
        async with gate:
            await service.handle(RegisterProduct(sku=sku, name=sku, now=now()), ACTOR, Responder())
            line = (ReceiptLine(sku=sku, quantity=Decimal(10**9)),)
            receipt = ReceiveStock(store_id=STORE, lines=line, occurred_at=now(), now=now())
            await service.handle(receipt, ACTOR, Responder())

    await asyncio.gather(*(one(sku) for sku in skus))


async def _load(service: CommandService, skus: list[str], seconds: float, tasks: int) -> Run:
    run, stop = Run(), time.perf_counter() + seconds

    async def task() -> None:
        while time.perf_counter() < stop:
            sale_id = uuid.uuid4().hex
            line = (Line(random.choice(skus), Decimal(1)),)
            command = RecordSale(
                store_id=STORE, sale_id=sale_id, lines=line, occurred_at=now(), now=now()
            )
            key = Idempotency.of(sale_id, msgspec.json.encode(command))
            started = time.perf_counter()
            outcome = await service.handle(command, ACTOR, Responder(), key)
            if outcome.status == 201:
                run.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(task() for _ in range(tasks)))
    run.seconds = time.perf_counter() - started
    return run


async def _measure(
    args: argparse.Namespace, pool: AsyncConnectionPool[Any], primary: int
) -> dict[tuple[str, str], list[Run]]:
    modes = {"locked": (None, False), "one trip": (HeadCache, False), "batched": (HeadCache, True)}
    services = {
        mode: CommandService(pool, heads=make and make(), batches=batches)
        for mode, (make, batches) in modes.items()
    }
    # Items of their own per mode: the locked runs do not make the one-trip cache stale.
    loads = {
        mode: {"many": [f"{n}{mode[0]}{k:05d}" for k in range(args.skus)], "hot": [f"{HOT}{n}"]}
        for n, mode in enumerate(modes)
    }
    for mode, service in services.items():
        await _stock(CommandService(pool, heads=None), [*loads[mode]["many"], *loads[mode]["hot"]])
        for load in loads[mode].values():  # warm-up: connections, plans, the cache
            await _load(service, load, 1.0, args.tasks)
    runs: dict[tuple[str, str], list[Run]] = {}
    me = psutil.Process()
    for _ in range(args.rounds):
        for mode, service in services.items():
            for name, load in loads[mode].items():
                heads = service.heads
                hits = heads.hits if heads else 0
                refreshed = heads.refreshed if heads else 0
                cpu, database = sum(me.cpu_times()[:2]), tree_cpu(primary)
                batcher = service.batcher
                batches, batched = (batcher.batches, batcher.commands) if batcher else (0, 0)
                run = await _load(service, load, args.seconds, args.tasks)
                if batcher:
                    run.batches, run.batched = batcher.batches - batches, batcher.commands - batched
                run.cpu = sum(me.cpu_times()[:2]) - cpu
                run.primary_cpu = tree_cpu(primary) - database
                run.hits = (heads.hits - hits) if heads else 0
                run.refreshed = (heads.refreshed - refreshed) if heads else 0
                runs.setdefault((mode, name), []).append(run)
    return runs


def _report(args: argparse.Namespace, runs: dict[tuple[str, str], list[Run]]) -> None:
    print(
        f"command service in-process, {args.tasks} tasks, {args.rounds} rounds of {args.seconds} s"
    )
    figures = {}
    for (mode, name), done in runs.items():
        sales = sum(len(run.latencies) for run in done)
        rate = statistics.median(run.rate for run in done)
        p99 = statistics.quantiles([x for run in done for x in run.latencies], n=100)[98]
        cpu = sum(run.cpu for run in done) / max(1, sales) * 1000
        primary = sum(run.primary_cpu for run in done) / max(1, sales) * 1000
        hit = sum(run.hits for run in done) / max(1, sales)
        second = sum(run.refreshed for run in done) / max(1, sales)
        size = sum(run.batched for run in done) / max(1, sum(run.batches for run in done))
        figures[mode, name] = (rate, p99, cpu, primary, hit, size)
        print(
            f"  {mode:9} {name:5} {rate:6.0f} sales/s  p99 {p99 * 1000:6.1f} ms  CPU ms/sale:"
            f" service {cpu:.3f} primary {primary:.3f}  one trip {hit:.0%} (+{second:.0%} in two)"
            f"  batch {size:4.1f}  (rounds: {[round(run.rate) for run in done]})"
        )
    for name in ("many", "hot"):
        gain = figures["one trip", name][0] / figures["locked", name][0]
        result = {
            "bench": "one_trip",
            "metric": f"sale {name}: one trip / locked",
            "value": round(gain, 3),
            "goal": None,
            "met": None,
        }
        print("BENCH-RESULT " + json.dumps(result))
        for metric, value in (
            ("batched / one trip", figures["batched", name][0] / figures["one trip", name][0]),
            ("mean batch size", figures["batched", name][5]),
        ):
            result = {"bench": "one_trip", "metric": f"sale {name}: {metric}"}
            result |= {"value": round(value, 3), "goal": None, "met": None}
            print("BENCH-RESULT " + json.dumps(result))
        hit = figures["one trip", name][4]
        result = {
            "bench": "one_trip",
            "metric": f"sale {name}: one-trip hit rate",
            "value": round(hit, 3),
            "goal": None,
            "met": None,
        }
        print("BENCH-RESULT " + json.dumps(result))
    primary = figures["batched", "many"][3]
    result = {
        "bench": "one_trip",
        "metric": "primary CPU ms per sale (batched, many)",
        "value": round(primary, 3),
        "goal": "<= 0.5",
        "met": primary <= 0.5,
    }
    print("BENCH-RESULT " + json.dumps(result))


async def _main(args: argparse.Namespace, env: dict[str, str], primary: int) -> None:
    settings = Settings.from_env({**os.environ, **env})
    async with open_resources(settings) as resources:
        await resources.primary.wait()
        _report(args, await _measure(args, resources.primary, primary))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.skus = 2.0, 1, 200
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-one-trip-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    try:
        env = topology.start()
        assert topology.primary is not None and topology.primary.process is not None
        asyncio.run(_main(args, env, topology.primary.process.pid))
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
