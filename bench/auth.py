"""Overhead of authentication plus rate limiting on a trivial endpoint, side by side.

    uv run python bench/auth.py [--seconds 5] [--connections 16] [--rounds 3] [--quick]

Starts an embedded topology in a temporary folder, creates an API key, and runs two
`uvicorn` processes (one worker each): `auth_app:secured` (the API's security middleware:
bearer lookup on the primary, one Redis script per call, the route's guard) and
`auth_app:plain` (the same endpoint without it). A keep-alive HTTP/1.1 load generator
with N connections hits each in turn for the given seconds, alternating over several
rounds, and prints requests per second, each server's CPU time per request, and the
overhead (and a BENCH-RESULT line). Goal: under 15%. `--quick`: 2 rounds of 2 s.
`--profile PATH`: py-spy's collapsed stacks of the secured server under load at PATH
(and a flame graph at PATH with `.svg`). `--baseline SRC`: both apps also served from
another source tree (SRC/src, e.g. `git archive main | tar -x -C SRC`), measured in the
same rounds (`@base`): before and after a change, in one run.
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
from pathlib import Path

import httpx
import psutil

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.processes import free_port
from inventory.security import bootstrap
from inventory.security.principal import Role

BENCH = Path(__file__).resolve().parent
GOAL_OVERHEAD = 0.15


async def _connection(port: int, request: bytes, stop: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
        counts.append(done)


async def _load(port: int, headers: dict[str, str], seconds: float, connections: int) -> int:
    lines = [b"GET /bench/ping HTTP/1.1", b"Host: 127.0.0.1"]
    lines += [f"{name}: {value}".encode() for name, value in headers.items()]
    request = b"\r\n".join(lines) + b"\r\n\r\n"
    counts: list[int] = []
    stop = time.perf_counter() + seconds
    await asyncio.gather(*(_connection(port, request, stop, counts) for _ in range(connections)))
    return sum(counts)


def _round(
    server: subprocess.Popen[bytes], port: int, headers: dict[str, str], seconds: float, n: int
) -> tuple[float, float]:
    """Requests per second and the server's CPU milliseconds (user + system) per request."""
    process = psutil.Process(server.pid)
    cpu = sum(process.cpu_times()[:2])
    started = time.perf_counter()
    done = asyncio.run(_load(port, headers, seconds, n))
    elapsed = time.perf_counter() - started
    return done / elapsed, (sum(process.cpu_times()[:2]) - cpu) * 1000 / max(1, done)


def _profile(
    path: str, server: subprocess.Popen[bytes], port: int, headers: dict[str, str], n: int
) -> None:
    """py-spy (through uvx, 250 Hz, GIL-holding samples) on the secured server for 8 s."""
    spies = []
    for form, output in (("raw", path), ("flamegraph", str(Path(path).with_suffix(".svg")))):
        command = ["uvx", "--from", "py-spy", "py-spy", "record", "--pid", str(server.pid)]
        command += ["--duration", "8", "--rate", "250", "--format", form, "--output", output]
        spies.append(subprocess.Popen([*command, "--nonblocking", "--gil"]))
    time.sleep(1.5)
    asyncio.run(_load(port, headers, 9.0, n))
    for spy in spies:
        spy.wait(60)


def _serve(factory: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(BENCH),
            factory,
            "--factory",
            "--port",
            str(port),
            "--no-proxy-headers",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, **env},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/bench/ping", timeout=2).status_code < 500:
                return process, port
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{factory} did not start") from None
            time.sleep(0.1)


def _measure(
    targets: dict[str, tuple[subprocess.Popen[bytes], int]],
    auth: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, tuple[float, float]]:
    """Each target's median req/s and CPU ms per request over the rounds, printed."""
    rounds: dict[str, list[tuple[float, float]]] = {name: [] for name in targets}
    for _ in range(args.rounds):
        for name, (server, port) in targets.items():
            rounds[name].append(_round(server, port, auth, args.seconds, args.connections))
    print(f"{args.connections} connections, {args.rounds} rounds of {args.seconds:.0f} s each")
    medians = {}
    for name, found in rounds.items():
        rate = statistics.median(rate for rate, _ in found)
        cpu = statistics.median(cpu for _, cpu in found)
        medians[name] = rate, cpu
        print(
            f"  {name:22} {rate:8.0f} req/s  server CPU {cpu:.3f} ms/req"
            f"  (rounds: {[round(x) for x, _ in found]})"
        )
    return medians


def _results(medians: dict[str, tuple[float, float]], suffix: str = "") -> None:
    """The overhead and the security's CPU per call, printed and as BENCH-RESULT lines."""
    (base, base_cpu), (ours, our_cpu) = (
        medians["without security" + suffix],
        medians["with security" + suffix],
    )
    overhead = 1 - ours / base
    print(f"  overhead{suffix:14} {overhead:8.1%}  (goal: under {GOAL_OVERHEAD:.0%})")
    print(f"  security's CPU{suffix:8} {our_cpu - base_cpu:8.3f} ms/req")
    if suffix:
        return
    result: dict[str, object] = {
        "bench": "auth",
        "metric": "security overhead on a trivial endpoint",
    }
    result |= {"value": round(overhead, 3), "goal": f"< {GOAL_OVERHEAD:.2f}"}
    print("BENCH-RESULT " + json.dumps({**result, "met": overhead < GOAL_OVERHEAD}))
    result = {"bench": "auth", "metric": "security's server CPU ms per call"}
    result |= {"value": round(our_cpu - base_cpu, 3), "goal": None, "met": None}
    print("BENCH-RESULT " + json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the secured app here")
    parser.add_argument("--baseline", help="a source tree whose src/ also serves both apps")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2.0, 2

    folder = Path(tempfile.mkdtemp(prefix="inventory-bench-auth-"))
    folder.chmod(0o755)
    topology = EmbeddedTopology(folder / "home", durable=False)
    targets: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        env = topology.start()
        # Budgets far above what one machine can send: we measure the cost, not refusals.
        env |= {f"INVENTORY_RATE_LIMIT_{role.upper()}": "100000000/60" for role in Role}
        env |= {"INVENTORY_LOG_LEVEL": "WARNING"}
        key = bootstrap.create_key(env["INVENTORY_PRIMARY_URL"], "bench", Role.VIEWER, ["*"]).key
        targets["without security"] = _serve("auth_app:plain", env)
        targets["with security"] = _serve("auth_app:secured", env)
        if args.baseline:
            base_env = {**env, "PYTHONPATH": str(Path(args.baseline).resolve() / "src")}
            targets["without security@base"] = _serve("auth_app:plain", base_env)
            targets["with security@base"] = _serve("auth_app:secured", base_env)
        auth = {"Authorization": f"Bearer {key}"}
        for _, port in targets.values():  # warm-up
            asyncio.run(_load(port, auth, 1.0, args.connections))
        if args.profile:
            _profile(args.profile, *targets["with security"], auth, args.connections)
        medians = _measure(targets, auth, args)
        if args.baseline:
            _results(medians, "@base")
        _results(medians)
        return 0
    finally:
        for server, _ in targets.values():
            server.terminate()
            server.wait(30)
        topology.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
