"""Projection lag at a steady load, and rebuild throughput, each beside its floor.

    uv run python bench/projection.py [--rate 1000] [--seconds 20] [--stores 20]
                                      [--events 1000000] [--rounds 1] [--no-worker]
                                      [--generators 1] [--writers 16] [--quick]

`--quick`: 8 s of load and a 100,000-event rebuild (about a minute in all). Besides its
tables it prints `BENCH-RESULT {json}` lines: the stock_levels lag p50 and p99 at the
offered rate (goal: p99 < 100 ms at 1,000/s), the replication baseline, and the
stream_heads rebuild's rate against the copy floor.

Starts a durable embedded topology in a temporary home and a real worker process
(`python -m inventory worker`, as production runs it), then:

1. lag: appends one-event commands through `EventStore.append` (a command's transaction:
   early lock release, the durable marker; a "commands/s" equivalent without the HTTP
   layer) on a schedule of `--rate` events/s for `--seconds`, spread over `--stores`
   stores, each followed by the wake-up a command sends after its commit, from
   `--generators` processes of `--writers` connections each. An observer process polls
   the replica: each event's arrival in the events copy (replication, the baseline) and
   the first `stream_heads` checkpoint of its store that covers it (end to end). Both are
   timed from the moment the append's request was sent. `--no-worker` runs the same load
   with no worker (the floor: what the generator, the servers and Redis take by
   themselves).
2. rebuild: stops the worker, loads `--events` events straight into the primary's events
   table (`generate_series`, as the superuser; streams of 100 events over the stores),
   waits for the replica, then times `inventory projections rebuild stream_heads` beside
   the same replica copying its events copy into an empty table (the copy floor).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import multiprocessing
import multiprocessing.synchronize
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import psutil
import psycopg

from inventory.cli import projections as admin
from inventory.domain.events import ALL_EVENTS, StockReceived
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.projectors.backlog import BACKLOGS, PLAN
from inventory.readmodels.registry import PROJECTORS
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.worker.broker import build_broker

# Connections appending: a durable commit takes ~10 ms here, so 1,000/s needs more than
# ten in flight. Each writes its own streams, so none waits on another's lock.
WRITERS = 16
# The projectors whose checkpoints the observer follows: `stock` commits its checkpoint with
# the stock_levels rows, so "covered by its checkpoint" is "visible in a stock query".
OBSERVED = ("stream_heads", "stock")
POLL = 0.01  # seconds between the observer's looks (each costs the replica two queries)
STREAM_LENGTH = 100  # events per stream in the rebuild's bulk load
CHUNK = 100_000  # events per bulk-load transaction


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """The test event of tests/events.py (bench/ cannot import tests/)."""

    value: int


# ---------------------------------------------------------------------------- lag


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children, living and exited: a
    PostgreSQL postmaster's `children_*` hold the backends that have exited."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    except psutil.NoSuchProcess:
        return 0.0
    return total


def own_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process alone."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


class Components:
    """CPU seconds of each part of the run between `start` and `stop`."""

    def __init__(self, trees: dict[str, int], alone: dict[str, int]) -> None:
        self.trees, self.alone = trees, alone
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        """Every component's CPU seconds so far."""
        found = {name: tree_cpu(pid) for name, pid in self.trees.items()}
        return found | {name: own_cpu(pid) for name, pid in self.alone.items()}

    def start(self) -> None:
        """Take the starting figures."""
        self.before = self.read()

    def stop(self) -> None:
        """Take the figures used since `start`."""
        self.used = {name: cpu - self.before[name] for name, cpu in self.read().items()}


def observe(
    replica_url: str,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    out: str,
) -> None:
    """Poll the replica until `stop`; write what appeared when, as JSON, to `out`.

    Checkpoints are read before the events copy in each round: an event a checkpoint
    covers was in the copy before that read, so its copy time is never later than its
    checkpoint time. Times are taken after each query returns (lags are not under-counted).
    """
    copy: list[tuple[int, int, str, float]] = []  # position, seq, partition, seen at
    checkpoints: list[tuple[str, str, int, float]] = []  # projector, partition, seq, seen at
    last_seq, known = 0, {}
    with psycopg.connect(replica_url, autocommit=True) as conn:
        ready.set()
        while True:
            stopping = stop.is_set()
            rows = conn.execute(
                "SELECT projector, partition, seq FROM projector_checkpoints"
                " WHERE projector = ANY(%s)",
                (list(OBSERVED),),
            ).fetchall()
            now = time.monotonic()
            for projector, partition, seq in rows:
                if known.get((projector, partition)) != seq:
                    known[(projector, partition)] = seq
                    checkpoints.append((projector, partition, seq, now))
            rows = conn.execute(
                "SELECT position, seq, partition FROM events WHERE seq > %s ORDER BY seq",
                (last_seq,),
            ).fetchall()
            now = time.monotonic()
            copy += [(position, seq, partition, now) for position, seq, partition in rows]
            last_seq = rows[-1][1] if rows else last_seq
            if stopping:
                break
            time.sleep(POLL)
    Path(out).write_bytes(msgspec.json.encode({"copy": copy, "checkpoints": checkpoints}))


class Load(msgspec.Struct):
    """What the load generator did: when each event's append was sent (by position), how
    late on its schedule, how long each append took, and the generators' own CPU."""

    started: float
    ended: float = 0.0
    commits: dict[int, float] = msgspec.field(default_factory=dict)
    lateness: list[float] = msgspec.field(default_factory=list)
    round_trips: list[float] = msgspec.field(default_factory=list)
    cpu: float = 0.0  # seconds, the generator processes' (the main one's is measured apart)

    def merge(self, other: Load) -> None:
        """Take in another generator's share of the same schedule."""
        self.ended = max(self.ended, other.ended)
        self.commits.update(other.commits)
        self.lateness += other.lateness
        self.round_trips += other.round_trips
        self.cpu += other.cpu


@dataclass(frozen=True)
class Share:
    """One generator's part of the schedule: writers `part`, `part + parts`, ... of
    `writers * parts`, each taking every (writers * parts)-th event from its number on."""

    rate: int
    seconds: int
    stores: list[str]
    started: float  # CLOCK_MONOTONIC, shared by the processes of one machine
    part: int = 0
    parts: int = 1
    writers: int = WRITERS


async def offer_load(url: str, share: Share) -> Load:
    """Append this share of `rate * seconds` one-event commands on schedule, waking the
    projectors after each commit."""
    from inventory.worker.wakeups import wake  # noqa: PLC0415 - after build_broker

    store = EventStore(Codec(ALL_EVENTS))
    connections = [
        await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(share.writers)
    ]
    load = Load(started=share.started)
    commits, lateness, round_trips = load.commits, load.lateness, load.round_trips
    stores, rate, step = share.stores, share.rate, share.writers * share.parts

    async def writer(local: int) -> None:
        number = local * share.parts + share.part
        async with connections[local] as conn:
            for i in range(number, rate * share.seconds, step):
                due = share.started + i / rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                lateness.append(time.monotonic() - due)
                partition, sku = stores[i % len(stores)], f"LAG{number:02d}"
                received = StockReceived(
                    store_id=partition, sku=sku, quantity=Decimal(1), occurred_at=datetime.now(UTC)
                )
                write = StreamWrite(
                    f"stock-{partition}-{sku}", [NewEvent(received, partition, sku)], ANY
                )
                sent = time.monotonic()
                [recorded] = await store.append(conn, [write])
                # Timed from the request: the commit happened between it and the answer,
                # and a busy loop can see the answer late (the observer would then be first).
                commits[recorded.position] = sent
                round_trips.append(time.monotonic() - sent)
                wake([partition], recorded.position)  # as the command service does

    await asyncio.gather(*(writer(n) for n in range(share.writers)))
    load.ended = time.monotonic()
    return load


def generate(env: dict[str, str], share: Share, out: str) -> None:
    """A generator process: its share of the load, written to `out` with its CPU time."""
    build_broker(Settings.from_env({**os.environ, **env}))
    load = asyncio.run(offer_load(env["INVENTORY_PRIMARY_URL"], share))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    load.cpu = usage.ru_utime + usage.ru_stime
    Path(out).write_bytes(msgspec.json.encode(load))


def offer_in_processes(env: dict[str, str], root: Path, args: argparse.Namespace) -> Load:
    """The load from `--generators` processes on one schedule, merged."""
    context = multiprocessing.get_context("spawn")
    started = time.monotonic() + 2.0  # after the processes have started and connected
    stores = [f"store-{n:02d}" for n in range(args.stores)]
    shares = [
        Share(args.rate, args.seconds, stores, started, part, args.generators, args.writers)
        for part in range(args.generators)
    ]
    outs = [str(root / f"load-{share.part}.json") for share in shares]
    processes = [
        context.Process(target=generate, args=(env, share, out))
        for share, out in zip(shares, outs, strict=True)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    load = Load(started=started)
    for out in outs:
        load.merge(msgspec.json.decode(Path(out).read_bytes(), type=Load))
    return load


def projected_at(
    copy: list[list[Any]], checkpoints: list[list[Any]], projector: str
) -> dict[int, tuple[float, float | None]]:
    """Position → (seen in the events copy, first seen covered by its store's checkpoint
    of `projector`)."""
    by_partition: dict[str, list[tuple[int, float]]] = {}
    for name, partition, seq, seen in checkpoints:
        if name == projector:
            by_partition.setdefault(partition, []).append((seq, seen))
    result: dict[int, tuple[float, float | None]] = {}
    cursor: dict[str, int] = {}
    for position, seq, partition, seen in sorted(copy, key=lambda row: row[1]):
        marks, index = by_partition.get(partition, []), cursor.get(partition, 0)
        while index < len(marks) and marks[index][0] < seq:
            index += 1
        cursor[partition] = index
        projected = marks[index][1] if index < len(marks) else None
        # A row a checkpoint covers was in the copy when that checkpoint was read, even when
        # the copy's read (which follows) was slow to return it.
        result[position] = (min(seen, projected or seen), projected)
    return result


def cuts(values: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in milliseconds (zeros when there is nothing)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0, 0.0, 0.0
    pick = [ordered[len(ordered) // 2], ordered[min(int(len(ordered) * 0.99), len(ordered) - 1)]]
    p50, p99, top = (value * 1000 for value in [*pick, ordered[-1]])
    return p50, p99, top


def percentiles(values: list[float]) -> str:
    """p50, p99 and max in milliseconds."""
    if not values:
        return "n/a"
    return "".join(f"{value:>10.1f}" for value in cuts(values))


def bench_result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One headline figure for bench/run.py."""
    found = {"bench": "projection", "metric": metric, "value": round(value, 2)}
    print("BENCH-RESULT " + json.dumps({**found, "goal": goal, "met": met}))


def lag_run(
    env: dict[str, str], root: Path, args: argparse.Namespace, components: Components
) -> None:
    """Part 1: the steady load, observed; prints the table. Without a worker among
    `components`, it waits for replication only and prints the floor."""
    context = multiprocessing.get_context("spawn")
    ready, stop, out = context.Event(), context.Event(), str(root / "observed.json")
    observer = context.Process(
        target=observe, args=(env["INVENTORY_REPLICA_URL"], ready, stop, out)
    )
    observer.start()
    assert observer.pid is not None
    components.alone["observer"] = observer.pid
    with_worker = "worker" in components.trees
    try:
        if not ready.wait(60):
            raise RuntimeError("the observer process did not start")
        components.start()
        wall_before = time.monotonic()
        load = offer_in_processes(env, root, args)
        if with_worker:
            wait_projected(env["INVENTORY_REPLICA_URL"], max(load.commits), timeout=120)
        else:
            wait_replicated(env["INVENTORY_PRIMARY_ADMIN_URL"], env["INVENTORY_REPLICA_URL"])
        components.stop()
        components.used["generator"] += load.cpu
        wall = time.monotonic() - wall_before
    finally:
        stop.set()
        observer.join(60)
    observed = msgspec.json.decode(Path(out).read_bytes())
    commits = load.commits
    achieved = len(commits) / (load.ended - load.started)
    late = sorted(load.lateness)
    sustained = achieved >= 0.98 * args.rate and late[int(len(late) * 0.99)] < 0.1
    print(
        f"\nprojection lag: {args.rate} events/s offered for {args.seconds} s over "
        f"{args.stores} stores, one event per append, a wake-up per commit, "
        f"{args.generators} generator process(es) x {args.writers} connections, "
        + ("1 worker process" if with_worker else "NO worker (the floor)")
    )
    print(
        f"  committed {len(commits)} events at {achieved:,.0f}/s ({achieved / args.rate:.1%} of"
        f" offered); behind schedule p99 {late[int(len(late) * 0.99)] * 1000:.1f} ms,"
        f" max {late[-1] * 1000:.1f} ms -> {'sustained' if sustained else 'NOT sustained'}"
    )
    print(
        f"  an append's round trip (request to commit acknowledged): p50"
        f" {statistics.median(load.round_trips) * 1000:.1f} ms; lags below count from the"
        " request"
    )
    print_cpu(components.used, wall, len(commits))
    print_lags(observed, commits, f"at {achieved:,.0f}/s", sustained=sustained, args=args)


def print_lags(
    observed: dict[str, Any],
    commits: dict[int, float],
    at: str,
    *,
    sustained: bool,
    args: argparse.Namespace,
) -> None:
    """The lag lines (and their BENCH-RESULT lines): replication, then each projector."""
    with_worker = not args.no_worker
    print(f"  {'from commit on the primary to':<44}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for number, projector in enumerate(OBSERVED):
        seen = projected_at(observed["copy"], observed["checkpoints"], projector)
        replication = [seen[p][0] - c for p, c in commits.items() if p in seen]
        if number == 0:
            print(f"  {'row in the replica events copy (baseline)':<44}{percentiles(replication)}")
            bench_result(f"replication p99 ms {at} (baseline)", cuts(replication)[1], "", None)
        if not with_worker:
            break
        end_to_end = [t - c for p, c in commits.items() if p in seen and (t := seen[p][1])]
        share = [t - r for p in commits if p in seen and (r := seen[p][0]) and (t := seen[p][1])]
        label = "stock_levels (stock checkpoint)" if projector == "stock" else projector
        print(f"  {label + ' covering it':<44}{percentiles(end_to_end)}")
        print(f"  {'  of which projection (copy -> checkpoint)':<44}{percentiles(share)}")
        print(f"  {'  events never seen projected':<44}{len(commits) - len(end_to_end):>10}")
        if projector == "stock":
            p50, p99, _ = cuts(end_to_end)
            complete = len(end_to_end) == len(commits)
            bench_result(f"stock lag p50 ms {at}", p50, "", None)
            bench_result(
                f"stock lag p99 ms {at}" + ("" if sustained else " (NOT sustained)"),
                p99,
                f"< 100 ms at {args.rate:,}/s",
                p99 < 100 and sustained and complete and args.rate >= 1000,
            )


def print_cpu(used: dict[str, float], wall: float, events: int) -> None:
    """Each component's CPU over the run, in cores and per event committed."""
    print(
        f"  CPU from the start of the load until every event is "
        f"{'projected' if 'worker' in used else 'replicated'} ({wall:.1f} s):"
    )
    for name, cpu in [*used.items(), ("all of these", sum(used.values()))]:
        print(
            f"    {name:<12}{cpu:>7.1f} s {cpu / wall:>5.0%} of a core"
            f" {cpu / events * 1000:>6.2f} ms per event"
        )


def wait_projected(replica_url: str, position: int, timeout: float) -> None:
    """Until the event at `position` has reached the replica and every partition's
    stream_heads checkpoint is at its partition's head."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            arrived = conn.execute("SELECT 1 FROM events WHERE position = %s", (position,))
            if arrived.fetchone() and not any(lag.behind for lag in admin.lags(conn, PROJECTORS)):
                return
            time.sleep(0.05)
    print(f"  (gave up waiting for the projectors after {timeout:.0f} s)")


# ------------------------------------------------------------------------- rebuild


def bulk_load(admin_url: str, events: int, stores: int) -> float:
    """Insert `events` events (streams of STREAM_LENGTH over `stores` stores, versions in
    order) and their streams' rows, as the superuser; returns the seconds it took."""
    streams = max(events // STREAM_LENGTH, 1)
    started = time.monotonic()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for first in range(0, events, CHUNK):
            conn.execute(
                "INSERT INTO events (id, stream, version, type, store, data, metadata,"
                " occurred_at)"
                " SELECT gen_random_uuid(), 'bulk-' || i %% %(streams)s, i / %(streams)s + 1,"
                "  'test.counted', 'bulk-store-' || i %% %(streams)s %% %(stores)s,"
                "  jsonb_build_object('value', i), '{}', now()"
                " FROM generate_series(%(first)s::bigint, %(last)s) AS i",
                {
                    "streams": streams,
                    "stores": stores,
                    "first": first,
                    "last": min(first + CHUNK, events) - 1,
                },
            )
        conn.execute(
            "INSERT INTO streams (stream, version)"
            " SELECT 'bulk-' || k, (%(events)s - 1 - k) / %(streams)s + 1"
            " FROM generate_series(0, least(%(streams)s, %(events)s) - 1) AS k",
            {"events": events, "streams": streams},
        )
    return time.monotonic() - started


def wait_replicated(primary_admin: str, replica_url: str, timeout: float = 600) -> float:
    """Seconds until the replica holds the primary's last event."""
    started = time.monotonic()
    with psycopg.connect(primary_admin) as conn:
        row = conn.execute("SELECT max(position) FROM events").fetchone()
    assert row is not None
    with psycopg.connect(replica_url, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM events WHERE position = %s", row).fetchone():
            if time.monotonic() - started > timeout:
                raise RuntimeError("the replica did not catch up")
            time.sleep(0.1)
    return time.monotonic() - started


def copy_floor(replica_admin: str) -> tuple[int, float]:
    """Rows and seconds for `INSERT INTO scratch SELECT * FROM events` on the replica."""
    with psycopg.connect(replica_admin, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS scratch")
        conn.execute("CREATE TABLE scratch AS SELECT * FROM events WITH NO DATA")
        started = time.monotonic()
        rows = conn.execute("INSERT INTO scratch SELECT * FROM events").rowcount
        elapsed = time.monotonic() - started
        conn.execute("DROP TABLE scratch")
    return rows, elapsed


def timed_rebuild(replica_url: str) -> tuple[int, float]:
    """Events and seconds for `inventory projections rebuild stream_heads`, start to end."""
    with psycopg.connect(replica_url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    started = time.monotonic()
    admin.rebuild(replica_url, "stream_heads", out=io.StringIO())
    elapsed = time.monotonic() - started
    with psycopg.connect(replica_url) as conn:
        heads = conn.execute("SELECT sum(version) FROM stream_heads").fetchone()
    # Every stream's versions run 1..n, so its head's version is its event count.
    assert heads is not None and heads[0] == row[0], (heads, row)
    return row[0], elapsed


def health_query_ms(replica_url: str) -> float:
    """Milliseconds for the readiness check's backlog query (median of 5)."""
    times = []
    arguments = {"projectors": ["stream_heads"], "limit": 10_001, "max_age": 60}
    with psycopg.connect(replica_url, autocommit=True) as conn:
        for _ in range(5):
            started = time.monotonic()
            with conn.transaction():
                for setting in PLAN:
                    conn.execute(setting)
                conn.execute(BACKLOGS, arguments).fetchall()
            times.append(time.monotonic() - started)
    return statistics.median(times) * 1000


def rebuild_run(env: dict[str, str], args: argparse.Namespace) -> None:
    """Part 2: bulk load, then the copy floor and the rebuild, interleaved; prints them."""
    primary_admin, replica_url = env["INVENTORY_PRIMARY_ADMIN_URL"], env["INVENTORY_REPLICA_URL"]
    loaded = bulk_load(primary_admin, args.events, args.stores)
    caught_up = wait_replicated(primary_admin, replica_url)
    behind_ms = health_query_ms(replica_url)
    runs = [
        (copy_floor(env["INVENTORY_REPLICA_ADMIN_URL"]), timed_rebuild(replica_url))
        for _ in range(args.rounds)
    ]
    caught_up_ms = health_query_ms(replica_url)
    print(
        f"\nrebuild of stream_heads: {args.events} events bulk-loaded on the primary in "
        f"{loaded:.1f} s, on the replica {caught_up:.1f} s later"
    )
    print(f"  {'round':>5} {'events':>9} {'copy floor/s':>13} {'rebuild/s':>10} {'ratio':>6}")
    for number, ((rows, floor), (events, rebuild)) in enumerate(runs, 1):
        print(
            f"  {number:>5} {events:>9} {rows / floor:>13,.0f} {events / rebuild:>10,.0f}"
            f" {(events / rebuild) / (rows / floor):>6.2f}"
        )
    best = max((events / rebuild) / (rows / floor) for (rows, floor), (events, rebuild) in runs)
    bench_result("stream_heads rebuild rate / copy floor rate (best)", best, "", None)
    print(
        "  copy floor: INSERT INTO scratch SELECT * FROM events on the replica (no index);"
        " rebuild: reset + replay, as `inventory projections rebuild stream_heads`"
    )
    print(
        f"  readiness backlog query: {behind_ms:.1f} ms with every bulk store behind,"
        f" {caught_up_ms:.1f} ms caught up"
    )


def pid_of(server: Any) -> int:
    """The process id of an embedded server (postmaster or valkey-server)."""
    assert server is not None and server.process is not None
    pid: int = server.process.pid
    return pid


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m inventory worker` with the topology's environment, ready once it has
    projected a first wake-up."""
    with log.open("ab") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "inventory", "worker"],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    warm_up = Share(WRITERS, 1, ["warm-up"], time.monotonic() + 0.1)
    asyncio.run(offer_load(env["INVENTORY_PRIMARY_URL"], warm_up))
    with psycopg.connect(env["INVENTORY_PRIMARY_ADMIN_URL"]) as conn:
        last = conn.execute("SELECT max(position) FROM events").fetchone()
    assert last is not None
    wait_projected(env["INVENTORY_REPLICA_URL"], last[0], timeout=60)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit within 30 s."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="events/s offered (1000)")
    parser.add_argument("--seconds", type=int, default=20, help="duration of the load (20)")
    parser.add_argument("--stores", type=int, default=20, help="stores the load spans (20)")
    parser.add_argument(
        "--generators",
        type=int,
        default=1,
        help="load generator processes (1; more where cores allow)",
    )
    parser.add_argument(
        "--writers", type=int, default=WRITERS, help=f"connections per generator ({WRITERS})"
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="rebuild size (1000000)")
    parser.add_argument("--rounds", type=int, default=1, help="floor + rebuild rounds (1)")
    parser.add_argument(
        "--no-worker", action="store_true", help="the lag run's load without a worker (floor)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="8 s of load, 100,000 events rebuilt (~1 min)"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.events = min(args.seconds, 8), min(args.events, 100_000)

    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    worker = None
    try:
        env = topology.start()
        build_broker(Settings.from_env({**os.environ, **env}))
        servers = {"primary": topology.primary, "replica": topology.replica}
        servers["redis"] = topology.redis  # type: ignore[assignment]
        trees = {name: pid_of(server) for name, server in servers.items()}
        if not args.no_worker:
            worker = start_worker(env, root / "worker.log")
            trees["worker"] = worker.pid
        lag_run(env, root, args, Components(trees, {"generator": os.getpid()}))
        if worker is not None:
            stop_worker(worker)
        if args.events:
            rebuild_run(env, args)
    finally:
        if worker is not None:
            stop_worker(worker)
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
