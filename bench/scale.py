"""What one primary, one API process, one replica and one standby each spend per request.

    uv run python bench/scale.py [--seconds 6] [--connections 32] [--quick]

Starts a durable embedded topology in a temporary folder, a physical standby of its
replica (pg_basebackup -R), one worker, and API processes; a keep-alive load generator
(this process, httpx on asyncio) then runs, for `--seconds` each:
  sales x1   single-line sales (new sale id and Idempotency-Key each), one API process;
  sales x2   the same over two API processes;
  reads R    `GET /v1/stores/{store}/stock` through two API processes reading the replica;
  reads S    the same with INVENTORY_READ_URL naming the standby only.
Printed per run: answers per second, p50 / p99 latency, and the CPU milliseconds per
answer of the API processes, the primary, the replica and the standby (psutil, each
postmaster with its children). docs/scaling.md turns these into how many processes and
standbys one primary carries. On a shared 2-core machine the rates are bounded by the
load generator and every server sharing the cores: read the CPU per answer, not the rate.
Headline (issue 19): two API processes no slower than one, API and primary CPU per sale.
`--quick`: 2 s per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the failover tests' server helpers

from tests.failover.scale_sales import stocked_store  # noqa: E402
from tests.failover.scale_servers import read_url, replica_standby  # noqa: E402

from inventory.runtime.embedded import EmbeddedTopology  # noqa: E402
from inventory.runtime.processes import free_port  # noqa: E402
from inventory.runtime.settings import Settings  # noqa: E402
from inventory.security import bootstrap  # noqa: E402
from inventory.security.principal import Role  # noqa: E402

SKUS = [f"SC{number:03d}" for number in range(200)]
STORE = "scale"


@dataclass
class Tally:
    """Answers of one run."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0


def tree_cpu(pid: int) -> float:
    """CPU seconds so far of a process and its children."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


def spawn_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`inventory serve` on a free port, once it answers."""
    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "inventory", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200:
                return process, port
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"inventory serve did not start; see {log}") from None
        time.sleep(0.1)


async def load(
    ports: list[int], request: Callable[[httpx.AsyncClient], object], args: argparse.Namespace
) -> Tally:
    """`args.connections` loops sending `request` to `ports` in turn for `args.seconds`."""
    tally = Tally()
    started = time.perf_counter()
    stop = started + args.seconds

    async def loop(port: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while time.perf_counter() < stop:
                began = time.perf_counter()
                response = await request(http)  # type: ignore[misc]
                if response.status_code < 300:
                    tally.latencies.append(time.perf_counter() - began)
                else:
                    tally.failures += 1

    await asyncio.gather(*(loop(ports[n % len(ports)]) for n in range(args.connections)))
    tally.seconds = time.perf_counter() - started
    return tally


def measure(
    name: str,
    ports: list[int],
    request: Callable[[httpx.AsyncClient], object],
    args: argparse.Namespace,
    pids: dict[str, list[int]],
) -> tuple[float, dict[str, float]]:
    """One run; prints its line; answers per second and CPU ms per answer of each server."""
    before = {what: sum(tree_cpu(pid) for pid in each) for what, each in pids.items()}
    tally = asyncio.run(load(ports, request, args))
    used = {what: sum(tree_cpu(pid) for pid in each) - before[what] for what, each in pids.items()}
    answers = max(1, len(tally.latencies))
    ordered = sorted(tally.latencies) or [0.0]
    p50, p99 = statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]
    per_answer = {what: used[what] / answers * 1000 for what in used}
    cpu = "  ".join(f"{what} {per_answer[what]:.2f}" for what in used)
    print(
        f"{name:9} {len(tally.latencies) / tally.seconds:7.0f}/s  p50 {p50 * 1000:6.1f} ms"
        f"  p99 {p99 * 1000:6.1f} ms  failures {tally.failures}  CPU ms/answer: {cpu}",
        flush=True,
    )
    return len(tally.latencies) / tally.seconds, per_answer


def headline(metric: str, value: float, goal: str, met: bool) -> None:
    """One headline figure, in the line bench/run.py reads."""
    line = {"bench": "scale", "metric": metric, "value": round(value, 3), "goal": goal, "met": met}
    print("BENCH-RESULT " + json.dumps(line), flush=True)


def headlines(one: tuple[float, dict[str, float]], two: tuple[float, dict[str, float]]) -> None:
    """Issue 19's goals 2 and 3 as this bench measures them (one-line sales)."""
    ratio = two[0] / one[0] if one[0] else 0.0
    headline("sales x2 / x1 API processes", ratio, ">= 1.0", ratio >= 1.0)
    api, primary = one[1]["api"], one[1]["primary"]
    headline("API CPU ms per one-line sale", api, "<= 0.6", api <= 0.6)
    headline("primary CPU ms per one-line sale", primary, "<= 0.5", primary <= 0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="2 s per run")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 2.0
    folder = Path(tempfile.mkdtemp(prefix="inventory-bench-scale-"))
    folder.chmod(0o755)
    topology = EmbeddedTopology(folder / "home", durable=True)
    topology.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = {
            **topology.environment(),
            "INVENTORY_LOG_LEVEL": "WARNING",
            "INVENTORY_REDIS_NAMESPACE": f"bench-{uuid.uuid4().hex[:6]}",
            **{f"INVENTORY_RATE_LIMIT_{role}": "10000000/60" for role in ("ADMIN", "ANONYMOUS")},
        }
        settings = Settings.from_env({**os.environ, **env})
        key = bootstrap.create_key(settings.primary_url, "bench", Role.ADMIN, ["*"]).key
        headers = {"Authorization": f"Bearer {key}"}
        stocked_store(settings, STORE, SKUS, 10**9)
        worker_log = (folder / "worker.log").open("ab")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "inventory", "worker"],
                env={**os.environ, **env},
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
        )
        assert topology.primary and topology.replica
        with replica_standby(
            env["INVENTORY_REPLICA_ADMIN_URL"], topology.secrets["postgres"]
        ) as standby:
            servers = {
                "primary": [topology.primary.process.pid],
                "replica": [topology.replica.process.pid],  # type: ignore[union-attr]
                "standby": [standby.process.pid],
            }  # type: ignore[union-attr]
            counter = iter(range(10**9))

            async def sale(http: httpx.AsyncClient) -> httpx.Response:
                number = next(counter)
                body = {
                    "sale_id": f"b{number}",
                    "lines": [{"sku": SKUS[number % len(SKUS)], "quantity": 1}],
                }
                return await http.post(
                    f"/v1/stores/{STORE}/sales",
                    json=body,
                    headers={**headers, "Idempotency-Key": f"b{number}"},
                )

            async def read(http: httpx.AsyncClient) -> httpx.Response:
                return await http.get(
                    f"/v1/stores/{STORE}/stock", params={"limit": 50}, headers=headers
                )

            print(f"{args.connections} connections, {args.seconds:.0f} s per run", flush=True)
            apis = [spawn_api(env, folder / f"api-{n}.log") for n in range(2)]
            processes.extend(process for process, _ in apis)
            ports = [port for _, port in apis]
            pids = {"api": [process.pid for process, _ in apis], **servers}
            asyncio.run(load(ports, sale, argparse.Namespace(seconds=1.0, connections=8)))
            one = measure("sales x1", ports[:1], sale, args, pids)
            two = measure("sales x2", ports, sale, args, pids)
            measure("reads R", ports, read, args, pids)
            on_standby = {**env, "INVENTORY_READ_URL": read_url(settings.replica_url, standby.port)}
            readers = [spawn_api(on_standby, folder / f"api-s{n}.log") for n in range(2)]
            processes.extend(process for process, _ in readers)
            pids = {"api": [process.pid for process, _ in readers], **servers}
            asyncio.run(
                load(
                    [port for _, port in readers],
                    read,
                    argparse.Namespace(seconds=1.0, connections=8),
                )
            )
            measure("reads S", [port for _, port in readers], read, args, pids)
            headlines(one, two)
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)
        topology.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
