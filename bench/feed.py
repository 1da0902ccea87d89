"""Live-feed fan-out: delivery latency from commit to a WebSocket client, beside Redis's
own publish → receive latency for messages of the same size (the floor).

    uv run python bench/feed.py [--clients 200] [--rate 500] [--seconds 10]

Starts an embedded topology in a temporary home, a real worker and one real API process
(`python -m inventory worker|serve`), connects `--clients` feed clients to one store (in
a separate process), then appends one-event commands on a schedule of `--rate` events/s
for `--seconds`, each followed by its wake-up. Every client records when each event
arrived (CLOCK_MONOTONIC is shared by the processes of one machine); latency is timed
from the append request (its commit happened between request and answer). In the same
run a plain Redis publisher/subscriber pair exchanges messages of the feed's size at the
same rate.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import psycopg
import redis.asyncio as aioredis
import websockets

from inventory.eventstore.codec import Codec
from inventory.eventstore.store import EventStore, NewEvent, StreamWrite
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from inventory.security import bootstrap
from inventory.security.principal import Role
from inventory.worker.broker import build_broker

STORE = "bench"
WRITERS = 8


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """The test event of tests/events.py (bench/ cannot import tests/)."""

    value: int


class Seen(msgspec.Struct):
    """The only fields a client decodes."""

    kind: str
    position: int = 0
    seq: int = 0


def run_clients(url: str, clients: int, expect: int, seconds: float, out: str) -> None:
    """A process holding `clients` feed connections; writes position → [arrival times]."""
    closed = [0]

    async def client(arrivals: list[tuple[int, float]], ready: asyncio.Event) -> None:
        # A client that is closed for falling behind (4008) resumes with `after`, as the
        # dashboard does; `closed` counts those resumptions.
        decoder = msgspec.json.Decoder(Seen)
        after: int | None = None
        deadline = time.monotonic() + seconds
        while len(arrivals) < expect and time.monotonic() < deadline:
            resume = "" if after is None else f"&after={after}"
            try:
                async with websockets.connect(url + resume, max_size=None) as socket:
                    ready.set()
                    async with asyncio.timeout(deadline - time.monotonic()):
                        while len(arrivals) < expect:
                            seen = decoder.decode(await socket.recv(decode=False))
                            if seen.kind == "event":
                                arrivals.append((seen.position, time.monotonic()))
                                after = seen.seq
            except websockets.ConnectionClosed:
                closed[0] += 1
            except TimeoutError:
                return

    async def main() -> tuple[list[list[tuple[int, float]]], list[asyncio.Task[None]]]:
        lists: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
        events = [asyncio.Event() for _ in range(clients)]
        tasks = [asyncio.create_task(client(lists[i], events[i])) for i in range(clients)]
        await asyncio.gather(*(event.wait() for event in events))
        return lists, tasks

    async def run() -> list[list[tuple[int, float]]]:
        lists, tasks = await main()
        Path(out + ".ready").touch()  # noqa: ASYNC240 - once, before the load starts
        await asyncio.gather(*tasks)
        print(f"feed connections closed (4008) and resumed with after: {closed[0]}")
        return lists

    Path(out).write_bytes(msgspec.json.encode(asyncio.run(run())))


async def offer_load(url: str, rate: int, seconds: int) -> dict[int, float]:
    """Append `rate * seconds` one-event commands on schedule; position → request time."""
    from inventory.worker.wakeups import wake  # noqa: PLC0415 - after build_broker

    store = EventStore(Codec([Counted]))
    commits: dict[int, float] = {}
    started = time.monotonic() + 0.1

    async def writer(number: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for i in range(number, rate * seconds, WRITERS):
                if (delay := started + i / rate - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                write = StreamWrite(
                    f"stock-{STORE}-W{number}", [NewEvent(Counted(value=i), store=STORE)]
                )
                sent = time.monotonic()
                [recorded] = await store.append(conn, [write])
                commits[recorded.position] = sent
                wake([STORE])

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
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


async def load_and_floor(
    env: dict[str, str], args: argparse.Namespace
) -> tuple[dict[int, float], list[float]]:
    return await asyncio.gather(
        offer_load(env["INVENTORY_PRIMARY_URL"], args.rate, args.seconds),
        redis_floor(env["INVENTORY_REDIS_URL"], args.rate, args.seconds, args.size),
    )


def report(
    commits: dict[int, float], out: Path, floor: list[float], args: argparse.Namespace
) -> None:
    lists = msgspec.json.decode(out.read_bytes(), type=list[list[tuple[int, float]]])
    latencies = [
        at - commits[position]
        for arrivals in lists
        for position, at in arrivals
        if position in commits
    ]
    expected = len(commits) * args.clients
    received = sum(len(arrivals) for arrivals in lists)
    lost = sum(1 for arrivals in lists if {p for p, _ in arrivals} != set(commits))
    span = max((at for arrivals in lists for _, at in arrivals), default=0) - min(commits.values())
    print(f"clients {args.clients}, offered {args.rate} events/s for {args.seconds} s")
    print(f"events appended {len(commits)}; delivered {received} of {expected} messages")
    print(f"delivery rate {received / span:.0f} messages/s; clients missing an event: {lost}")
    print(f"commit → client: {percentiles(latencies)}")
    print(f"redis publish → receive ({args.size} B): {percentiles(floor)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--size", type=int, default=420, help="floor message bytes (420, a feed event)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-feed-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = topology.start()
        settings = Settings.from_env({**os.environ, **env})
        build_broker(settings)
        key = bootstrap.create_key(settings.primary_url, "bench", Role.VIEWER, ["*"]).key
        port = free_port()
        extra = {"INVENTORY_RATE_LIMIT_WS_HANDSHAKE": "100000/60", "INVENTORY_LOG_LEVEL": "warning"}
        processes.append(start(["worker"], {**env, **extra}, root / "worker.log"))
        processes.append(start(["serve", "--port", str(port)], {**env, **extra}, root / "api.log"))
        wait_live(f"http://127.0.0.1:{port}")
        out = root / "arrivals.json"
        url = f"ws://127.0.0.1:{port}/v1/feed?stores={STORE}&token={key}"
        expect = args.rate * args.seconds
        clients = multiprocessing.Process(
            target=run_clients, args=(url, args.clients, expect, args.seconds + 30, str(out))
        )
        clients.start()
        while not Path(str(out) + ".ready").exists():
            time.sleep(0.1)
        commits, floor = asyncio.run(load_and_floor(env, args))
        clients.join()
        report(commits, out, floor, args)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
