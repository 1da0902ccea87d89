"""Live-feed fan-out: delivery latency from commit to a WebSocket client, beside Redis's
own publish → receive latency for messages of the same size (the floor).

    uv run python bench/feed.py [--clients 1000] [--rate 500] [--seconds 10]
                                [--apis 2] [--client-processes 2] [--quick]

Starts an embedded topology in a temporary home, a real worker and `--apis` real API
processes (`python -m inventory worker|serve`, each on its own port, as behind a load
balancer), connects `--clients` feed clients to one store, shared out over the APIs in
turn (raw-socket WebSocket clients spread over `--client-processes` processes, each
printing its CPU time), then appends one-event commands on a schedule of `--rate` events/s for
`--seconds`, each followed by its wake-up. Every client records when each event arrived
(CLOCK_MONOTONIC is shared by the processes of one machine); latency is timed from the
append request (its commit happened between request and answer). In the same run a plain
Redis publisher/subscriber pair exchanges messages of the feed's size at the same rate
(the floor), and a plain subscriber on the feed's channels times commit → published (the
worker's share of the latency).

Losses are counted exactly: every (client, event) pair whose event was committed and
never reached that client, whatever the reason (dropped, a close, the client's time up),
and every duplicate. `BENCH-RESULT {json}` lines (for bench/run.py): commit → client p99
(issue 19: < 500 ms at 1,000 clients x 500 events/s with two APIs) and the losses (goal
0). `--quick`: 5 s of load (about a minute in all).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import psutil
import psycopg
import redis.asyncio as aioredis

from inventory.eventstore.codec import Codec
from inventory.eventstore.records import NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.feed import messages
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role
from inventory.worker.broker import build_broker

STORE = "bench"
# Connections appending: one store's appends take turns on its chain lock, so 500/s
# needs more than a few in flight when an append's round trip is tens of ms.
WRITERS = 16


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """The test event of tests/events.py (bench/ cannot import tests/)."""

    value: int


class Seen(msgspec.Struct):
    """The fields the watcher of published messages decodes."""

    kind: str
    position: int = 0
    seq: int = 0


HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
OPCODE_TEXT, OPCODE_CLOSE, OPCODE_PING = 0x1, 0x8, 0x9


# An event message begins so (messages.event_message's order): one regular expression over
# a chunk's whole frames finds every event in it, without a Python step per frame.
EVENT = re.compile(rb'\{"kind":"event","seq":(\d+),"position":(\d+),')


class Arrivals:
    """What one client received: per chunk, its clock reading and the (seq, position) of
    each event in it, turned into numbers only after the run."""

    def __init__(self) -> None:
        self.chunks: list[tuple[float, list[tuple[bytes, bytes]]]] = []
        self.count = 0

    def add(self, now: float, events: list[tuple[bytes, bytes]]) -> None:
        """Record a chunk's events."""
        self.chunks.append((now, events))
        self.count += len(events)

    def positions(self) -> list[tuple[int, float]]:
        """(position, arrival) of every event, in the order received."""
        return [(int(position), now) for now, events in self.chunks for _, position in events]


class FeedClient(asyncio.Protocol):
    """A feed connection on a raw socket: unmasked server frames walked by hand (headers
    only, to answer pings and see a close), the events found by `EVENT` in each chunk, one
    clock reading per chunk received. Cheap enough that the clients are not what the
    bench measures (they print their CPU time)."""

    def __init__(self, arrivals: Arrivals, path: str, host: str) -> None:
        self.arrivals = arrivals
        self.request = HANDSHAKE.format(path=path, host=host).encode()
        self.buffer = b""
        self.upgraded = False
        self.after: int | None = None
        self.close_code: int | None = None
        self.transport: asyncio.Transport | None = None
        self.ready = asyncio.Event()
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            head, found, buffer = buffer.partition(b"\r\n\r\n")
            if not found:
                self.buffer = head
                return
            assert head.startswith(b"HTTP/1.1 101"), head
            self.upgraded = True
            self.ready.set()
        whole = self._walk(buffer)
        events = EVENT.findall(buffer, 0, whole)
        if events:
            self.arrivals.add(now, events)
            self.after = int(events[-1][0])
        self.buffer = buffer[whole:]

    def _walk(self, buffer: bytes) -> int:
        """Where the whole frames of `buffer` end; control frames handled on the way."""
        at, size = 0, len(buffer)
        while size - at >= 2:
            length, start = buffer[at + 1] & 0x7F, at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 4]), at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = int.from_bytes(buffer[at + 2 : at + 10]), at + 10
            if size - start < length:
                break
            if buffer[at] & 0x0F != OPCODE_TEXT:
                self._control(buffer[at] & 0x0F, buffer[start : start + length])
            at = start + length
        return at

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OPCODE_PING and self.transport is not None:
            # A client's frames are masked: a zero mask leaves the payload as it is.
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + bytes(4) + payload)
        elif opcode == OPCODE_CLOSE:
            self.close_code = int.from_bytes(payload[:2])
            if self.transport is not None:
                self.transport.close()


@dataclass(frozen=True)
class ClientShare:
    """What one client process does: `clients` connections to `path`, on `ports` in turn."""

    ports: tuple[int, ...]
    path: str
    clients: int
    expect: int  # events each connection waits for
    grace: float  # and for at most this long after the load has ended
    out: str  # where its arrivals go
    done: str  # written with the count of events appended once the load has ended


def run_clients(share: ClientShare) -> None:
    """A process holding `clients` feed connections; writes position → [arrival times]."""
    ports, path, clients, out = share.ports, share.path, share.clients, share.out
    closed = [0]
    # Events each connection waits for, and until when: the load's end sets both.
    expect, deadline = [share.expect], [time.monotonic() + 3600]

    def waiting(arrivals: Arrivals) -> bool:
        return arrivals.count < expect[0] and time.monotonic() < deadline[0]

    async def watch_done() -> None:
        done = Path(share.done)
        # A file the main process writes: a stat every 0.1 s does not block the loop.
        while not done.exists():  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.1)
        count = int(done.read_text())  # noqa: ASYNC240
        expect[0], deadline[0] = count, time.monotonic() + share.grace

    async def client(arrivals: Arrivals, ready: asyncio.Event, port: int) -> None:
        # Every client starts at `after=0` (the bench's store holds only the load's
        # events): the handshake's answer comes before the session has read where it
        # starts, so without `after` a session starting late would rightly skip what was
        # published before it. A client closed for falling behind (4008) resumes with
        # `after`, as the dashboard does; `closed` counts those resumptions.
        loop = asyncio.get_running_loop()
        after = 0
        while waiting(arrivals):
            feed = FeedClient(arrivals, f"{path}&after={after}", f"127.0.0.1:{port}")
            await loop.create_connection(lambda: feed, "127.0.0.1", port)  # noqa: B023
            await feed.ready.wait()
            ready.set()
            while waiting(arrivals) and not feed.done.done():
                await asyncio.wait([feed.done], timeout=0.2)
            if feed.transport is not None:
                feed.transport.close()
            after = feed.after if feed.after is not None else after
            if feed.close_code is not None:
                closed[0] += 1

    async def run() -> list[Arrivals]:
        lists = [Arrivals() for _ in range(clients)]
        events = [asyncio.Event() for _ in range(clients)]
        tasks = [
            asyncio.create_task(client(lists[i], events[i], ports[i % len(ports)]))
            for i in range(clients)
        ]
        await asyncio.gather(*(event.wait() for event in events))
        Path(out + ".ready").touch()  # noqa: ASYNC240 - once, before the load starts
        watcher = asyncio.create_task(watch_done())
        await asyncio.gather(*tasks)
        watcher.cancel()
        return lists

    lists = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"client process {os.getpid()}: {clients} connections, {closed[0]} closed (4008) and "
        f"resumed with after; CPU {usage.ru_utime:.1f} s user + {usage.ru_stime:.1f} s sys"
    )
    Path(out).write_bytes(msgspec.json.encode([arrivals.positions() for arrivals in lists]))


async def offer_load(url: str, rate: int, seconds: int, writers: int) -> dict[int, float]:
    """Append `rate * seconds` one-event commands on schedule; position → request time."""
    from inventory.worker.wakeups import wake  # noqa: PLC0415 - after build_broker

    store = EventStore(Codec([Counted]))
    commits: dict[int, float] = {}
    started = time.monotonic() + 0.1

    async def writer(number: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for i in range(number, rate * seconds, writers):
                if (delay := started + i / rate - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                write = StreamWrite(
                    f"stock-{STORE}-W{number}", [NewEvent(Counted(value=i), store=STORE)]
                )
                sent = time.monotonic()
                [recorded] = await store.append(conn, [write])
                commits[recorded.position] = sent
                wake([STORE], recorded.position)  # as the command service does

    await asyncio.gather(*(writer(n) for n in range(writers)))
    return commits


async def redis_floor(url: str, rate: int, seconds: int, size: int) -> list[float]:
    """Publish → receive latency of `size`-byte messages at `rate`/s on a plain channel."""
    publisher, subscriber = aioredis.Redis.from_url(url), aioredis.Redis.from_url(url)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe("bench-floor")
    await pubsub.get_message(timeout=1)
    latencies: list[float] = []
    padding = b"x" * max(size - 30, 0)

    async def receive() -> None:
        while len(latencies) < rate * seconds:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is None:
                return
            sent = float(message["data"][:20])
            latencies.append(time.monotonic() - sent)

    receiver = asyncio.create_task(receive())
    started = time.monotonic()
    for i in range(rate * seconds):
        if (delay := started + i / rate - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        await publisher.publish("bench-floor", f"{time.monotonic():20.6f}".encode() + padding)
    await receiver
    await pubsub.aclose()
    await publisher.aclose()
    await subscriber.aclose()
    return latencies


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    p50, p99, top = cuts[49] * 1000, cuts[98] * 1000, max(values) * 1000
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms"


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "inventory", *args],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_live(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base_url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "API not live"
        time.sleep(0.2)


async def watch_published(url: str, namespace: str, count: int) -> dict[int, float]:
    """When each event's live message reached Redis (position → receipt by a plain
    subscriber): what the worker adds before the API's fan-out."""
    client = aioredis.Redis.from_url(url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(messages.channel_pattern(namespace))
    seen: dict[int, float] = {}
    decoder = msgspec.json.Decoder(Seen)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(120):
            while len(seen) < count:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    bundle = messages.BUNDLE_DECODER.decode(message["data"])
                    seen[decoder.decode(bytes(bundle.event)).position] = time.monotonic()
    await pubsub.aclose()
    await client.aclose()
    return seen


async def load_and_floor(
    env: dict[str, str], namespace: str, args: argparse.Namespace
) -> tuple[dict[int, float], list[float], dict[int, float]]:
    redis_url = env["INVENTORY_REDIS_URL"]
    published = asyncio.create_task(watch_published(redis_url, namespace, args.rate * args.seconds))
    commits, floor = await asyncio.gather(
        offer_load(env["INVENTORY_PRIMARY_URL"], args.rate, args.seconds, args.writers),
        redis_floor(redis_url, args.rate, args.seconds, args.size),
    )
    return commits, floor, await published


def bench_result(metric: str, value: float, goal: str, met: bool | None) -> None:
    """One headline figure for bench/run.py."""
    found = {"bench": "feed", "metric": metric, "value": round(value, 2)}
    print("BENCH-RESULT " + json.dumps({**found, "goal": goal, "met": met}))


@dataclass(frozen=True)
class Losses:
    """Every (client, event) pair counted: missing, duplicated, out of order."""

    missing: int  # committed events a client never received
    clients_missing: int  # clients missing at least one
    duplicates: int  # arrivals of an event a client already had
    unknown: int  # arrivals of no committed event (never expected: a bench bug if any)
    out_of_order: int  # clients that saw some event before an earlier one

    @classmethod
    def count(cls, commits: dict[int, float], lists: list[list[tuple[int, float]]]) -> Losses:
        """Compare each client's arrivals with every committed event."""
        committed = set(commits)
        missing = clients_missing = duplicates = unknown = out_of_order = 0
        for arrivals in lists:
            positions = [position for position, _ in arrivals]
            got = set(positions)
            gap = len(committed - got)
            missing += gap
            clients_missing += gap > 0
            duplicates += len(positions) - len(got)
            unknown += len(got - committed)
            out_of_order += positions != sorted(positions)
        return cls(missing, clients_missing, duplicates, unknown, out_of_order)


def p99_by_second(commits: dict[int, float], lists: list[list[tuple[int, float]]]) -> str:
    """Commit → client p99 of the events committed in each second of the run."""
    first = min(commits.values())
    by_second: dict[int, list[float]] = {}
    for arrivals in lists:
        for position, at in arrivals:
            if position in commits:
                second = int(commits[position] - first)
                by_second.setdefault(second, []).append(at - commits[position])
    return " ".join(
        f"{statistics.quantiles(v, n=100, method='inclusive')[98] * 1000:.0f}"
        for _, v in sorted(by_second.items())
        if len(v) > 1
    )


def report(
    commits: dict[int, float], outs: list[Path], floor: list[float], args: argparse.Namespace
) -> None:
    """The delivery table, the exact losses, the floor, and their BENCH-RESULT lines."""
    lists = [
        arrivals
        for out in outs
        for arrivals in msgspec.json.decode(out.read_bytes(), type=list[list[tuple[int, float]]])
    ]
    latencies = [
        at - commits[position]
        for arrivals in lists
        for position, at in arrivals
        if position in commits
    ]
    expected = len(commits) * args.clients
    received = sum(len(arrivals) for arrivals in lists)
    losses = Losses.count(commits, lists)
    span = max((at for arrivals in lists for _, at in arrivals), default=0) - min(commits.values())
    print(
        f"clients {args.clients} over {args.apis} API process(es), offered {args.rate} events/s"
        f" for {args.seconds} s"
    )
    first, last = min(commits.values()), max(commits.values())
    rate = (len(commits) - 1) / (last - first) if last > first else 0.0
    print(
        f"events appended {len(commits)} at {rate:.0f}/s ({args.writers} connections); "
        f"delivered {received} of {expected} messages"
    )
    print(
        f"lost (client, event) pairs: {losses.missing} (clients missing any: "
        f"{losses.clients_missing}); duplicates {losses.duplicates}; unknown {losses.unknown};"
        f" clients out of order {losses.out_of_order}"
    )
    print(f"delivery rate {received / span:.0f} messages/s")
    print(f"commit → client: {percentiles(latencies)}")
    print(f"  p99 by second of the run (ms): {p99_by_second(commits, lists)}")
    print(f"redis publish → receive ({args.size} B): {percentiles(floor)}")
    shape = f"{args.clients} clients x {args.rate}/s, {args.apis} APIs"
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98] * 1000 if latencies else 0
    # The goal's shape, and its rate actually committed (not only offered).
    goal_shape = args.clients >= 1000 and min(args.rate, rate / 0.95) >= 500 and args.apis >= 2
    bench_result(
        f"commit → client p99 ms ({shape})",
        p99,
        "< 500 ms at 1,000 x 500/s, 2 APIs",
        p99 < 500 and goal_shape and not losses.missing,
    )
    lost = losses.missing + losses.duplicates + losses.unknown
    bench_result(f"messages lost or duplicated ({shape})", lost, "0", lost == 0)
    redis_p99 = statistics.quantiles(floor, n=100, method="inclusive")[98] * 1000 if floor else 0
    bench_result(f"redis publish → receive p99 ms ({args.size} B, floor)", redis_p99, "", None)


def start_apis(
    count: int, env: dict[str, str], root: Path, processes: list[subprocess.Popen[bytes]]
) -> tuple[int, ...]:
    """`count` API processes, each on its own port, live; their ports."""
    ports = tuple(free_port() for _ in range(count))
    for number, port in enumerate(ports):
        log = root / f"api-{number}.log"
        processes.append(start(["serve", "--port", str(port)], env, log))
    for port in ports:
        wait_live(f"http://127.0.0.1:{port}")
    return ports


def start_clients(
    ports: tuple[int, ...], path: str, root: Path, args: argparse.Namespace
) -> tuple[list[multiprocessing.Process], list[Path]]:
    """The client processes, once every connection of each is open."""
    expect = args.rate * args.seconds
    done = root / "load-done"
    shares = [
        len(range(i, args.clients, args.client_processes)) for i in range(args.client_processes)
    ]
    outs = [root / f"arrivals-{i}.json" for i in range(args.client_processes)]
    grace = 10 if args.quick else 30  # after the load: later than that is lost
    clients = [
        multiprocessing.Process(
            target=run_clients,
            args=(ClientShare(ports, path, share, expect, grace, str(out), str(done)),),
        )
        for share, out in zip(shares, outs, strict=True)
    ]
    for process in clients:
        process.start()
    while not all(Path(f"{out}.ready").exists() for out in outs):
        time.sleep(0.1)
    return clients, outs


def main() -> None:
    """Run the benchmark and print the figures beside the Redis floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--apis", type=int, default=2, help="API processes (2)")
    parser.add_argument(
        "--writers", type=int, default=WRITERS, help=f"connections appending ({WRITERS})"
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument(
        "--size", type=int, default=420, help="floor message bytes (420, a feed event)"
    )
    parser.add_argument("--quick", action="store_true", help="5 s of load (about a minute)")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 5)
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-feed-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = topology.start()
        settings = Settings.from_env({**os.environ, **env})
        build_broker(settings)
        key = bootstrap.create_key(settings.primary_url, "bench", Role.VIEWER, ["*"]).key
        extra = {"INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "100000/60", "INVENTORY_LOG_LEVEL": "warning"}
        processes.append(start(["worker"], {**env, **extra}, root / "worker.log"))
        ports = start_apis(args.apis, {**env, **extra}, root, processes)
        path = f"/v1/feed?stores={STORE}&token={key}"
        clients, outs = start_clients(ports, path, root, args)
        names = ["worker", *(f"api {n + 1}" for n in range(args.apis))]
        servers = {name: psutil.Process(p.pid) for name, p in zip(names, processes, strict=True)}
        before = {name: sum(proc.cpu_times()[:2]) for name, proc in servers.items()}
        commits, floor, published = asyncio.run(load_and_floor(env, settings.redis_namespace, args))
        (root / "load-done").write_text(str(len(commits)))
        for process in clients:
            process.join()
        used = {name: sum(proc.cpu_times()[:2]) - before[name] for name, proc in servers.items()}
        report(commits, outs, floor, args)
        print(
            "commit → published to Redis by the worker: "
            + percentiles([at - commits[p] for p, at in published.items() if p in commits])
        )
        print(
            "CPU from the first append until the last client finished: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
        )
        count = max(len(commits), 1)
        print(
            "  per event appended: "
            + ", ".join(f"{name} {1000 * seconds / count:.2f} ms" for name, seconds in used.items())
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
