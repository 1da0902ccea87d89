"""Sales over HTTP against a minimal one-INSERT endpoint on the same primary, side by side.

    uv run python bench/commands.py [--seconds 5] [--rounds 3] [--connections 64]
        [--skus 1000] [--stores 8] [--pin CPUS] [--profile PATH] [--baseline SRC] [--quick]

Starts a durable embedded topology in a temporary folder, three `inventory serve`
processes (the first with the whole pool, INVENTORY_POOL_MAX_SIZE, the other two with half
each) and one uvicorn process of `bench/commands_app.py` (one INSERT per request), opens
`--stores` stores, registers `--skus` products plus one hot SKU, and receives plenty of
each in each store. A keep-alive HTTP/1.1 load generator (this process, asyncio,
`--connections` connections) then sends single-line sales (`POST
/v1/stores/{store}/sales`, a new sale id and Idempotency-Key each) for `--seconds`:
  minimal  the baseline endpoint, the same body;
  many     sales of a random SKU among many, a store's on its own connections;
  hot      sales of one SKU in one store (every command locks the same stream).
Rounds interleave the three, against one API process. Then `many` with three layouts
(issue 19, goal 3), one after another, each after a sweep that sells every SKU of every
store once: 1 API process (the first), 2 unrouted (the other two, a store's sales on
both) and 2 routed (a store's on one): as many primary connections in each, through one
nginx each with the shipped routing maps (ops/nginx/, docs/edge.md) or, without nginx,
straight to the processes with crc32(store) % 2 for the routed one.
Printed: median requests per second over the rounds, p50 and p99 latency (all rounds),
CPU per request of the servers under test (nginx included), of the primary (postmaster
and backends), and of the replica's processes plus this load generator together, the
ratio to the minimal endpoint; then issue 19's goals as BENCH-RESULT lines: many >= 40%
of minimal with p99 < 100 ms, hot >= 20%, API CPU <= 0.6 ms and primary CPU <= 0.5 ms
per sale, and 2 API processes routed by store no slower than 1 (2 unrouted beside it).
Every layout shares the machine's CPUs; `--pin 0` confines every server under test to
CPU 0 in all, so 2 API processes face 1 on the same total CPU. `--profile PATH` first
samples one API process under the `many` load with py-spy (collapsed stacks at PATH, a
flame graph at PATH.svg). `--baseline SRC`: one more API process running another source
tree's code (SRC/src, e.g. `git archive main | tar -x -C SRC`), measured with one
process as `many@base` beside `many` in the same rounds: before and after a change.
`--quick`: 1 round of 2 s, 200 SKUs (about 40 s in all).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import psutil
import psycopg
import uvloop

import edge_nginx  # bench/ is on sys.path as a script's folder
from edge_nginx import Edge
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.security import bootstrap
from inventory.security.principal import Role

BENCH = Path(__file__).resolve().parent
STORE = "bench"
HOT = "HOT"
PLENTY = 10**9
PROFILE_SECONDS = 8.0
STORES = 8
# Issue 19's goals 1 to 3.
GOAL_RATIO, GOAL_P99, GOAL_HOT = 0.40, 0.100, 0.20
GOAL_API_MS, GOAL_PRIMARY_MS = 0.6, 0.5
_encode = msgspec.json.Encoder().encode


@dataclass
class Tally:
    """What one run of the load saw."""

    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds the server processes used meanwhile
    primary_cpu: float = 0.0  # CPU seconds the primary's processes used meanwhile
    others_cpu: float = 0.0  # CPU seconds of the replica's processes and this load generator
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def cpu_per_request(self) -> float:
        """Server CPU seconds per successful request."""
        return self.cpu / max(1, len(self.latencies))

    @property
    def primary_cpu_per_request(self) -> float:
        """The primary's CPU seconds per successful request."""
        return self.primary_cpu / max(1, len(self.latencies))

    @property
    def others_cpu_per_request(self) -> float:
        """The replica's and the load generator's CPU seconds per successful request."""
        return self.others_cpu / max(1, len(self.latencies))

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return len(self.latencies) / self.seconds


async def _connection(port: int, make: Callable[[], bytes], stop: float, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            request = make()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 201"):
                tally.latencies.append(time.perf_counter() - started)
            else:
                tally.failures += 1
                if tally.failures == 1:
                    print(f"    unexpected answer: {head[:12]!r} {body[:200]!r}", file=sys.stderr)
    finally:
        writer.close()


Targets = list[tuple[int, Callable[[], bytes]]]  # each connection's port and request maker


async def _load(targets: Targets, seconds: float) -> Tally:
    tally = Tally()
    started = time.perf_counter()
    stop = started + seconds
    await asyncio.gather(*(_connection(port, make, stop, tally) for port, make in targets))
    tally.seconds = time.perf_counter() - started
    return tally


def _spread(ports: list[int], makers: list[Callable[[], bytes]], connections: int) -> Targets:
    """Connections over `ports` in turn; each store's over every port (unrouted): the
    makers (one a store) change every len(ports) connections."""
    return [
        (ports[index % len(ports)], makers[(index // len(ports)) % len(makers)])
        for index in range(connections)
    ]


class _Requests:
    """A maker of POST requests: a new sale id and key each, a random SKU of `skus`, or
    each SKU in turn when `ordered` (shared by every connection that calls it)."""

    def __init__(self, path: str, key: str, skus: list[str], ordered: bool = False) -> None:
        self.skus, self.ordered, self.sent = skus, ordered, 0
        self.prefix = uuid.uuid4().hex[:8]
        self.head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()

    def __call__(self) -> bytes:
        sale_id = f"{self.prefix}-{self.sent}"
        sku = self.skus[self.sent % len(self.skus)] if self.ordered else random.choice(self.skus)
        self.sent += 1
        body = _encode({"sale_id": sale_id, "lines": [{"sku": sku, "quantity": 1}]})
        return (
            self.head
            + (f"Idempotency-Key: {sale_id}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
            + body
        )


_requests = _Requests


def _sweep(targets: Targets, skus: list[str], key: str) -> None:
    """Sell every SKU of every store once over `targets`' connections, each store's SKUs in
    turn: each process's cache then holds the heads of the streams routed to it, whatever
    the layout measured before (a head another process moved since costs a round trip)."""
    makers: dict[int, _Requests] = {}
    for _port, make in targets:
        assert isinstance(make, _Requests)
        path = make.head.split(b" ", 2)[1].decode()
        makers.setdefault(id(make), _Requests(path, key, skus, ordered=True))
    sweep = [(port, makers[id(make)]) for port, make in targets]
    while any(maker.sent < len(skus) for maker in makers.values()):
        asyncio.run(_load(sweep, 0.5))


def _spawn(args: list[str], env: dict[str, str], probe: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", *args, "--port", str(port)], env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=2).status_code < 500:
                return process, port
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{args} did not start") from None
            time.sleep(0.1)


def _stock(port: int, key: str, skus: list[str], stores: list[str]) -> None:
    """The stores, the products, and plenty of each received in each store."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
        for store in stores:
            http.post("/v1/stores", json={"id": store, "name": store}).raise_for_status()
        for sku in [*skus, HOT]:
            http.post("/v1/products", json={"sku": sku, "name": sku}).raise_for_status()
        every = [*skus, HOT]
        for store, start in itertools.product(stores, range(0, len(every), 1000)):
            # A command has at most 1,000 lines.
            lines = [{"sku": sku, "quantity": PLENTY} for sku in every[start : start + 1000]]
            http.post(
                f"/v1/stores/{store}/receipts",
                json={"lines": lines},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ).raise_for_status()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _cpu(processes: list[psutil.Process]) -> float:
    return sum(sum(process.cpu_times()[:2]) for process in processes)


def _tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of a postmaster and each of its backends, by pid."""
    root = psutil.Process(pid)
    times = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times[process.pid] = sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return times


def _tree_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass
class Figures:
    """One kind's figures over its rounds."""

    rate: float  # median successful requests per second
    p99: float  # seconds, over every round
    cpu_ms: float  # median CPU ms per request of the servers under test
    primary_ms: float  # median CPU ms per request of the primary


def _report(name: str, tallies: list[Tally], base: float | None) -> Figures:
    rate = statistics.median(tally.rate for tally in tallies)
    latencies = [latency for tally in tallies for latency in tally.latencies]
    failures = sum(tally.failures for tally in tallies)
    ratio = f"{rate / base:6.1%} of minimal" if base else ""
    rounds = [round(tally.rate) for tally in tallies]
    cpu = statistics.median(tally.cpu_per_request for tally in tallies) * 1000
    primary = statistics.median(tally.primary_cpu_per_request for tally in tallies) * 1000
    others = statistics.median(tally.others_cpu_per_request for tally in tallies) * 1000
    failed = f", failures {failures}" if failures else ""
    p99 = _percentile(latencies, 0.99) if latencies else float("inf")
    p50 = _percentile(latencies, 0.5) if latencies else float("inf")
    print(
        f"  {name:8} {rate:7.0f} req/s  p50 {p50 * 1000:6.1f} ms"
        f"  p99 {p99 * 1000:6.1f} ms  CPU ms/req: server {cpu:4.2f}"
        f" primary {primary:4.2f} replica+client {others:4.2f}"
        f"  {ratio}  (rounds: {rounds}{failed})"
    )
    return Figures(rate, p99, cpu, primary)


def _result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One headline figure for bench/run.py."""
    line = {"bench": "commands", "metric": metric, "value": round(value, 3), "goal": goal}
    print("BENCH-RESULT " + json.dumps({**line, "met": met}))


def _verdict(one: dict[str, Figures], routes: dict[str, Figures], pinned: str) -> bool:
    """The goals of issue 19 (1 to 3) as BENCH-RESULT lines; True when all are met."""
    many = one["many"].rate / one["minimal"].rate
    hot = one["hot"].rate / one["minimal"].rate
    api_ms, db_ms = one["many"].cpu_ms, one["many"].primary_ms
    checks: list[tuple[str, float, str, bool]] = [
        ("sale many SKUs / one-INSERT", many, f">= {GOAL_RATIO:.2f}", many >= GOAL_RATIO),
        ("sale many SKUs p99 ms", one["many"].p99 * 1000, "< 100", one["many"].p99 < GOAL_P99),
        ("sale hot SKU / one-INSERT", hot, f">= {GOAL_HOT:.2f}", hot >= GOAL_HOT),
        ("API CPU ms per sale", api_ms, f"<= {GOAL_API_MS}", api_ms <= GOAL_API_MS),
        ("primary CPU ms per sale", db_ms, f"<= {GOAL_PRIMARY_MS}", db_ms <= GOAL_PRIMARY_MS),
    ]
    where = f" (API on CPUs {pinned})" if pinned else " (unpinned)"
    routed = routes["2 routed"].rate / routes["1 API"].rate
    unrouted = routes["2 unrouted"].rate / routes["1 API"].rate
    checks.append(
        (f"sale many SKUs, 2 API by store / 1 API{where}", routed, ">= 1.00", routed >= 1)
    )
    for metric, value, goal, met in checks:
        _result(metric, value, goal, met)
    # The layout before routing, for comparison: it has no goal of its own.
    _result(f"sale many SKUs, 2 API unrouted / 1 API{where}", unrouted, "routing's baseline", None)
    return all(met for *_, met in checks)


ROUTES = ("1 API", "2 unrouted", "2 routed")


def _ports(apis: list[int], layout: str) -> list[int]:
    """The API processes of a layout: the first alone (the whole pool), or the other two
    (half the pool each: as many connections to the primary in every layout)."""
    return apis[:1] if layout == "1 API" else apis[1:]


def _layouts(
    args: argparse.Namespace, apis: list[int], makers: list[Callable[[], bytes]], edges: Edges
) -> dict[str, Targets]:
    """Each layout's connections: to its nginx, or (without nginx) straight to the API
    processes, a store's connections to crc32(store) % 2 in the routed one."""
    if edges:
        return {
            name: _spread([edge.port], makers, args.connections) for name, edge in edges.items()
        }
    pair = apis[1:]
    owners = [pair[zlib.crc32(store.encode()) % len(pair)] for store in _stores(args)]
    routed = [(owners[i % len(makers)], makers[i % len(makers)]) for i in range(args.connections)]
    return {
        "1 API": _spread(apis[:1], makers, args.connections),
        "2 unrouted": _spread(pair, makers, args.connections),
        "2 routed": routed,
    }


def _routes(
    args: argparse.Namespace,
    apis: list[int],
    pids: dict[int, int],
    sales: tuple[str, list[str], list[Callable[[], bytes]]],
    db: tuple[int, int],
) -> dict[str, Figures]:
    """Sales of many SKUs over --stores stores with 1 API process, 2 unrouted and 2 with a
    store's sales on one (issue 19, goal 3), each after a sweep; their figures, printed."""
    key, skus, makers = sales
    binary = edge_nginx.nginx_binary()
    edges: Edges = {}
    folder = Path(tempfile.mkdtemp(prefix="inventory-bench-edge-"))
    try:
        for index, name in enumerate(ROUTES):
            if binary:
                routed = name != "2 unrouted"
                edge = edge_nginx.Edge(binary, _ports(apis, name), routed, folder / str(index))
                edges[name] = edge
                _pin(edge.pids(), args.pin)
        layouts = _layouts(args, apis, makers, edges)
        servers = {
            name: [psutil.Process(pids[port]) for port in _ports(apis, name)]
            + [psutil.Process(pid) for pid in (edges[name].pids() if edges else [])]
            for name in ROUTES
        }
        # One layout after the other, each after a sweep (not interleaved: a layout that
        # ran in between would leave the caches of the one measured stale).
        tallies: dict[str, list[Tally]] = {name: [] for name in ROUTES}
        for name, targets in layouts.items():
            _sweep(targets, skus, key)
            for _ in range(args.rounds):
                tallies[name].append(_tally(targets, servers[name], db, args.seconds))
    finally:
        for edge in edges.values():
            edge.stop()
        shutil.rmtree(folder, ignore_errors=True)
    how = (
        "through nginx with ops/nginx's routing maps (server CPU includes nginx)"
        if edges
        else ("client-side, crc32(store) % 2 (no nginx installed)")
    )
    pinned = f", servers under test on CPUs {args.pin}" if args.pin else ""
    print(f"sales of many SKUs over {len(makers)} store(s), {how}{pinned}")
    return {name: _report(name, found, None) for name, found in tallies.items()}


def _spy(pid: int, seconds: float, form: str, output: str) -> subprocess.Popen[bytes]:
    """py-spy (run with uvx) sampling `pid` for `seconds` into `output` as `form`."""
    command = ["uvx", "--from", "py-spy", "py-spy", "record", "--pid", str(pid)]
    command += ["--duration", str(round(seconds)), "--rate", "250"]
    command += ["--format", form, "--output", output]
    return subprocess.Popen([*command, "--nonblocking", "--gil"])


def _profile(
    args: argparse.Namespace, api: subprocess.Popen[bytes], port: int, make: Callable[[], bytes]
) -> None:
    """Two py-spy samplers of the first API process under the `many` load: the collapsed
    stacks (`--profile PATH`) and a flame graph beside them (PATH with `.svg`)."""
    svg = str(Path(args.profile).with_suffix(".svg"))
    targets = _spread([port], [make], args.connections)
    asyncio.run(_load(targets, 2.0))  # connections and caches warm
    spies = [_spy(api.pid, PROFILE_SECONDS, "raw", args.profile)]
    spies.append(_spy(api.pid, PROFILE_SECONDS, "flamegraph", svg))
    time.sleep(1.5)
    asyncio.run(_load(targets, PROFILE_SECONDS + 1))
    for spy in spies:
        spy.wait(60)


def _pin(pids: list[int], cpus: str) -> None:
    """Confine the servers under test to `cpus` ("0" or "0,1"), both configurations alike."""
    if cpus:
        for pid in pids:
            psutil.Process(pid).cpu_affinity([int(cpu) for cpu in cpus.split(",")])


Edges = dict[str, Edge]
Kinds = dict[str, tuple[list[int], list[Callable[[], bytes]]]]  # ports, a maker per store


def _tally(
    targets: Targets, servers: list[psutil.Process], db: tuple[int, int], seconds: float
) -> Tally:
    """One run of the load, with the CPU the servers, the primary and the rest used."""
    primary, replica = db
    before, database = _cpu(servers), _tree_cpu(primary)
    others = _tree_cpu(replica), _cpu([psutil.Process()])
    tally = asyncio.run(_load(targets, seconds))
    tally.cpu = _cpu(servers) - before
    tally.primary_cpu = _tree_used(database, _tree_cpu(primary))
    tally.others_cpu = _tree_used(others[0], _tree_cpu(replica)) + (
        _cpu([psutil.Process()]) - others[1]
    )
    return tally


def _measure(
    args: argparse.Namespace, kinds: Kinds, count: int, pids: dict[int, int], db: tuple[int, int]
) -> dict[str, Figures]:
    """Rounds of each kind against `count` servers of each; their figures, printed."""
    kinds = {name: kind for name, kind in kinds.items() if len(kind[0]) >= count}
    tallies: dict[str, list[Tally]] = {name: [] for name in kinds}
    for ports, makers in kinds.values():  # warm-up
        asyncio.run(_load(_spread(ports[:count], makers, args.connections), 1.0))
    for _ in range(args.rounds):
        for name, (ports, makers) in kinds.items():
            servers = [psutil.Process(pids[port]) for port in ports[:count]]
            targets = _spread(ports[:count], makers, args.connections)
            tallies[name].append(_tally(targets, servers, db, args.seconds))
    pinned = f", servers under test on CPUs {args.pin}" if args.pin else ""
    print(
        f"{count} API process(es) (and {count} minimal), {args.connections} connections,"
        f" {args.rounds} rounds of {args.seconds:.0f} s{pinned}"
    )
    base = _report("minimal", tallies["minimal"], None)
    return {
        name: _report(name, found, base.rate) if name != "minimal" else base
        for name, found in tallies.items()
    }


def _stores(args: argparse.Namespace) -> list[str]:
    """The stores sales of many SKUs spread over: `bench`, then bench1, bench2, ..."""
    return [STORE, *(f"{STORE}{n}" for n in range(1, args.stores))]


def _run(
    args: argparse.Namespace, env: dict[str, str], key: str, primary: int, replica: int
) -> bool:
    bench_env = {**os.environ, **env, "BENCH_PRIMARY_URL": env["INVENTORY_PRIMARY_ADMIN_URL"]}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        apis, minimals = [], []
        pids: dict[int, int] = {}  # port -> server pid
        pool = int(bench_env.get("INVENTORY_POOL_MAX_SIZE", "20"))
        for index in range(3):
            # The first serves alone; the other two share its pool between them.
            size = str(pool if index == 0 else max(2, pool // 2))
            api_env = {**bench_env, "INVENTORY_POOL_MAX_SIZE": size}
            process, port = _spawn(["inventory", "serve"], api_env, "/health/live")
            processes.append(process)
            apis.append(port)
            pids[port] = process.pid
            if index:
                continue  # one minimal endpoint: the reference is one process's
            process, port = _spawn(
                [
                    "uvicorn",
                    "--app-dir",
                    str(BENCH),
                    "commands_app:create",
                    "--factory",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                bench_env,
                "/bench/insert",
            )
            processes.append(process)
            minimals.append(port)
            pids[port] = process.pid
        _pin(list(pids.values()), args.pin)
        skus = [f"SKU{n:05d}" for n in range(args.skus)]
        _stock(apis[0], key, skus, _stores(args))
        spread = [_requests(f"/v1/stores/{store}/sales", key, skus) for store in _stores(args)]
        kinds: Kinds = {
            "minimal": (minimals, [_requests("/bench/insert", key, skus)]),
            "many": (apis, spread),
            "hot": (apis, [_requests(f"/v1/stores/{STORE}/sales", key, [HOT])]),
        }
        if args.baseline:
            source = str(Path(args.baseline).resolve() / "src")
            process, port = _spawn(
                ["inventory", "serve"], {**bench_env, "PYTHONPATH": source}, "/health/live"
            )
            processes.append(process)
            pids[port] = process.pid
            _pin([process.pid], args.pin)
            kinds["many@base"] = ([port], kinds["many"][1])
        if args.profile:
            _profile(args, processes[0], apis[0], kinds["many"][1][0])
        one = _measure(args, kinds, 1, pids, (primary, replica))
        routes = _routes(args, apis, pids, (key, skus, spread), (primary, replica))
        met = _verdict(one, routes, args.pin)
        print(f"goals of issue 19 (1 to 3): {'met' if met else 'NOT met'}")
        return met
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skus", type=int, default=1000)
    parser.add_argument(
        "--stores",
        type=int,
        default=STORES,
        help="stores the sales of many SKUs spread over (a store's on its own connections); "
        "hot sales stay in one store",
    )
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of an API here")
    parser.add_argument(
        "--pin",
        default="",
        help="CPUs (e.g. 0 or 0,1) every server under test is confined to, with one process "
        "of each and with two: 2 API processes against 1 on the same total CPU (goal 3)",
    )
    parser.add_argument(
        "--baseline",
        help="a source tree (its src/ runs one more API process) measured beside this one",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.skus = 2.0, 1, 200
    uvloop.install()
    began = time.monotonic()

    folder = Path(tempfile.mkdtemp(prefix="inventory-bench-commands-"))
    folder.chmod(0o755)
    topology = EmbeddedTopology(folder / "home", durable=True)
    try:
        env = topology.start()
        # Budgets far above what one machine can send: we measure the cost, not refusals.
        env |= {f"INVENTORY_RATE_LIMIT_{role.upper()}": "100000000/60" for role in Role}
        env |= {"INVENTORY_LOG_LEVEL": "WARNING", "INVENTORY_RATE_LIMIT_ANONYMOUS": "100000000/60"}
        with psycopg.connect(env["INVENTORY_PRIMARY_ADMIN_URL"], autocommit=True) as conn:
            from commands_app import TABLE  # noqa: PLC0415 - bench/ is on sys.path as a script

            conn.execute(TABLE)
        key = bootstrap.create_key(env["INVENTORY_PRIMARY_URL"], "bench", Role.ADMIN, ["*"]).key
        assert topology.primary is not None and topology.primary.process is not None
        assert topology.replica is not None and topology.replica.process is not None
        pids = topology.primary.process.pid, topology.replica.process.pid
        _run(args, env, key, *pids)  # a goal not met is a figure, not a failure (run.py)
        return 0
    finally:
        topology.stop()
        shutil.rmtree(folder, ignore_errors=True)
        print(f"whole run: {time.monotonic() - began:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
