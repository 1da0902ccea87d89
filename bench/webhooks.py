"""Webhook delivery: commit → receiver latency at a steady load, and drain throughput.

    uv run python bench/webhooks.py [--rate 50] [--seconds 10] [--burst 2000]
                                    [--subscriptions 2] [--stores 10] [--quick]

Starts an embedded topology (durable) in a temporary home, a real worker process allowed
to send to 127.0.0.0/8, and a receiver on 127.0.0.1 (http.server, one thread per
request) that checks every signature with `standardwebhooks`. `--subscriptions`
subscriptions to every store point at it. Then:

1. latency: appends one-event commands at `--rate` events/s for `--seconds`, spread over
   `--stores` stores, each followed by the wake-up a command sends after its commit; each
   message's latency is its arrival at the receiver minus the moment its append was sent.
2. throughput: appends `--burst` events with no wake-up, then wakes once and times until
   every subscription has received every one (messages/s over all subscriptions).

Baseline, same run: the sender alone (`inventory.webhooks.sender.post`, a new connection
per message as in delivery, no database) posting `--burst` bodies to the same receiver
from one thread: the ceiling of one subscription's sequential delivery. `--quick`: 3 s of
latency phase and a burst of 300. No goal: the figures are printed for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from standardwebhooks.webhooks import Webhook

from inventory.domain.events import ALL_EVENTS, StockReceived
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.settings import Settings
from inventory.webhooks import sender, signing, subscriptions, targets
from inventory.worker.broker import build_broker

WRITERS = 8


class Receiver:
    """Arrival time of each (subscription path, position), every signature checked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrivals: dict[tuple[str, int], float] = {}
        self.secrets: dict[str, Webhook] = {}
        self.bad = 0
        self.count = 0

    def take(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        """Record one request."""
        now = time.monotonic()
        hook = self.secrets.get(path)
        try:
            if hook is not None:
                hook.verify(body, headers)
        except Exception:  # noqa: BLE001 - counted, not raised
            self.bad += 1
        data = msgspec.json.decode(body)["data"]
        with self.lock:
            self.count += 1
            self.arrivals.setdefault((path, data.get("position", -1)), now)


def serve(receiver: Receiver) -> ThreadingHTTPServer:
    """The receiver on a free port of 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.take(self.path, body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def subscribe(env: dict[str, str], port: int, count: int, receiver: Receiver) -> None:
    """`count` subscriptions to every store, starting after the events there are now."""
    async with await psycopg.AsyncConnection.connect(env["INVENTORY_PRIMARY_URL"]) as conn:
        for number in range(count):
            secret, path = signing.new_secret(), f"/hook/{number}"
            receiver.secrets[path] = Webhook(secret)
            new = subscriptions.NewSubscription(
                str(uuid.uuid4()),
                f"http://127.0.0.1:{port}{path}",
                ["*"],
                None,
                None,
                secret,
                "bench",
                await last_seq(env),
            )
            await subscriptions.create(conn, new)
        await conn.commit()


async def last_seq(env: dict[str, str]) -> int:
    """The replica's newest seq."""
    async with await psycopg.AsyncConnection.connect(env["INVENTORY_REPLICA_URL"]) as conn:
        row = await (await conn.execute("SELECT coalesce(max(seq), 0) FROM events")).fetchone()
    return int(row[0]) if row else 0


async def append(
    url: str, total: int, rate: float | None, stores: list[str], wake: bool
) -> dict[int, float]:
    """Append `total` one-event commands (at `rate`/s, or at once); position → sent at."""
    from inventory.worker.wakeups import wake as send_wake  # noqa: PLC0415 - after build_broker

    store = EventStore(Codec(ALL_EVENTS))
    sent_at: dict[int, float] = {}
    started = time.monotonic() + 0.1

    async def writer(number: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for i in range(number, total, WRITERS):
                if rate and (delay := started + i / rate - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                partition, sku = stores[i % len(stores)], f"WH{number:02d}"
                event = StockReceived(
                    store_id=partition, sku=sku, quantity=Decimal(1), occurred_at=datetime.now(UTC)
                )
                write = StreamWrite(
                    f"stock-{partition}-{sku}", [NewEvent(event, partition, sku)], ANY
                )
                sent = time.monotonic()
                [recorded] = await store.append(conn, [write])
                sent_at[recorded.position] = sent
                if wake:
                    send_wake([partition], recorded.position)  # as a command does

    await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    return sent_at


def wait_for(receiver: Receiver, wanted: set[tuple[str, int]], timeout: float) -> float:
    """Wait until every wanted message arrived; the monotonic time of the last one."""
    deadline = time.monotonic() + timeout
    while True:
        with receiver.lock:
            missing = wanted - receiver.arrivals.keys()
            if not missing:
                return max(receiver.arrivals[key] for key in wanted)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(missing)} of {len(wanted)} messages never arrived")
        time.sleep(0.05)


def ms(values: list[float], share: float) -> float:
    """The `share` quantile of `values`, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)] * 1000


def floor(port: int, count: int) -> float:
    """Messages/s of the sender alone, one thread, to the same receiver."""
    pinned = targets.pin(
        targets.parse(f"http://127.0.0.1:{port}/floor"), targets.networks(["127.0.0.0/8"])
    )
    secret = signing.new_secret()
    started = time.monotonic()
    for n in range(count):
        body = msgspec.json.encode({"type": "floor", "timestamp": 0, "data": {"position": -n}})
        stamp = int(time.time())
        headers = {
            "webhook-id": f"msg_floor_{n}",
            "webhook-timestamp": str(stamp),
            "webhook-signature": signing.signature_header([secret], f"msg_floor_{n}", stamp, body),
        }
        assert sender.post(pinned, headers, body, sender.Timeouts()).delivered
    return count / (time.monotonic() - started)


def run(env: dict[str, str], args: argparse.Namespace, receiver: Receiver, port: int) -> None:
    """Both phases and the floor; prints the figures."""
    stores = [f"wh{n:02d}" for n in range(args.stores)]
    paths = [f"/hook/{n}" for n in range(args.subscriptions)]
    asyncio.run(subscribe(env, port, args.subscriptions, receiver))
    # Warm-up: the worker started with the subscriptions; measure once it delivers.
    warm = asyncio.run(append(env["INVENTORY_PRIMARY_URL"], len(stores), None, stores, True))
    wait_for(receiver, {(p, pos) for p in paths for pos in warm}, 60)
    sent = asyncio.run(
        append(env["INVENTORY_PRIMARY_URL"], args.rate * args.seconds, args.rate, stores, True)
    )
    wait_for(receiver, {(p, pos) for p in paths for pos in sent}, 120)
    latencies = [receiver.arrivals[(p, pos)] - at for p in paths for pos, at in sent.items()]
    print(f"latency, {len(sent)} events at {args.rate}/s to {args.subscriptions} subscriptions:")
    p50, p99, worst = ms(latencies, 0.5), ms(latencies, 0.99), max(latencies) * 1000
    print(f"  commit → receiver  p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {worst:7.1f} ms")
    burst = asyncio.run(append(env["INVENTORY_PRIMARY_URL"], args.burst, None, stores, False))
    from inventory.worker.wakeups import wake  # noqa: PLC0415

    woken = time.monotonic()
    wake(stores)
    last = wait_for(receiver, {(p, pos) for p in paths for pos in burst}, 170)
    total = len(burst) * len(paths)
    print(f"throughput, a burst of {len(burst)} events to {len(paths)} subscriptions:")
    print(
        f"  {total} messages in {last - woken:.2f} s = {total / (last - woken):7.0f} messages/s"
        f" ({len(burst) / (last - woken):.0f}/s per subscription)"
    )
    alone = floor(port, args.burst)
    print(f"  floor: the sender alone, one thread: {alone:7.0f} messages/s")
    print(f"  signatures that failed standardwebhooks: {receiver.bad} of {receiver.count}")
    per_subscription = len(burst) / (last - woken)
    headline("commit -> receiver p99 ms", round(p99, 1), None, None)
    headline(
        "burst per subscription / sender alone", round(per_subscription / alone, 3), None, None
    )
    headline("signatures failed", receiver.bad, "0", receiver.bad == 0)


def headline(metric: str, value: float, goal: str | None, met: bool | None) -> None:
    """One headline figure, in the line bench/run.py reads."""
    line = {"bench": "webhooks", "metric": metric, "value": value, "goal": goal, "met": met}
    print("BENCH-RESULT " + json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50, help="events/s in the latency phase (50)")
    parser.add_argument("--seconds", type=int, default=10, help="latency phase length (10)")
    parser.add_argument("--burst", type=int, default=2000, help="events in the burst (2000)")
    parser.add_argument("--subscriptions", type=int, default=2, help="subscriptions (2)")
    parser.add_argument("--stores", type=int, default=10, help="stores the load spans (10)")
    parser.add_argument("--quick", action="store_true", help="3 s of latency, a burst of 300")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.burst = 3, 300
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    receiver = Receiver()
    server = serve(receiver)
    worker = None
    try:
        env = {
            **topology.start(),
            "INVENTORY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "INVENTORY_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:6]}",
            "INVENTORY_WORKER_METRICS_PORT": "0",
        }
        build_broker(Settings.from_env({**os.environ, **env}))
        with (root / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "inventory", "worker"],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        run(env, args, receiver, server.server_address[1])
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        server.shutdown()
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
