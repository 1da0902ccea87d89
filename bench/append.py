"""Append throughput: our EventStore.append against pgbench doing the same SQL.

    uv run python bench/append.py [--seconds 5] [--rounds 3] [--quick]

Starts a durable embedded topology in a temporary home and, for 1, 16 and 64
concurrent writers, counts one-event commands committed per second (each writer on its
own connection and stream) two ways: `EventStore.append` alone, and the command
service's path (`EventStore.lock`, decide, `append`). Then pgbench runs a script doing
the equivalent lock / insert / update in one transaction, with as many clients.
`--quick`: one round of 1 s each (under a minute with the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict

from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.store import EventStore
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.postgres import postgres_bin

WRITERS = (1, 16, 64)
GOAL = 0.70  # ours at 16 writers >= 70% of pgbench

PGBENCH_SCRIPT = """\
BEGIN;
SELECT version FROM streams WHERE stream = '{prefix}' || :client_id FOR UPDATE;
INSERT INTO events (id, stream, version, type, data, metadata, occurred_at)
SELECT gen_random_uuid(), s.stream, s.version + 1, 'test.counted', '{{"value":1}}', '{{}}', now()
FROM streams s WHERE s.stream = '{prefix}' || :client_id;
UPDATE streams SET version = version + 1, state = '{{"value":1}}', updated_at = now()
WHERE stream = '{prefix}' || :client_id;
END;
"""


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """The test event of tests/events.py (bench/ cannot import tests/)."""

    value: int


async def ours(url: str, writers: int, seconds: float, *, lock_first: bool) -> float:
    """Commits per second of `writers` concurrent one-event appends, each to its own stream.

    `lock_first` takes the command service's path: lock the stream and read its state
    (one round trip), decide, then append (another); otherwise `append` alone.
    """
    store = EventStore(Codec([Counted]))
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    deadline = time.monotonic() + seconds

    async def write(conn: psycopg.AsyncConnection, stream: str) -> int:
        commits = 0
        while time.monotonic() < deadline:
            event = Counted(value=commits)
            if lock_first:
                async with conn.transaction():
                    heads = await store.lock(conn, [stream])
                    expected = heads[stream].version
                    write = StreamWrite(stream, [NewEvent(event)], expected, event)
                    await store.append(conn, [write], locked=heads)
            else:
                # One statement, atomic on its own: no BEGIN/COMMIT round trips.
                await store.append(conn, [StreamWrite(stream, [NewEvent(event)], ANY, event)])
            commits += 1
        return commits

    try:
        started = time.monotonic()
        tag = "locked" if lock_first else "append"
        counts = await asyncio.gather(
            *(write(conn, f"bench-{tag}-{writers}-{i}") for i, conn in enumerate(conns))
        )
        return sum(counts) / (time.monotonic() - started)
    finally:
        for conn in conns:
            await conn.close()


def pgbench(admin_url: str, clients: int, seconds: int, workdir: Path) -> float:
    """pgbench tps (without initial connection time) for the equivalent SQL."""
    prefix = f"pgb-{clients}-"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO streams (stream, version) "
            "SELECT %s || i, 0 FROM generate_series(0, %s - 1) AS i ON CONFLICT DO NOTHING",
            (prefix, clients),
        )
    script = workdir / f"append-{clients}.sql"
    script.write_text(PGBENCH_SCRIPT.format(prefix=prefix))
    return run_pgbench(admin_url, script, clients, seconds)[0]


def run_pgbench(admin_url: str, script: Path, clients: int, seconds: int) -> tuple[float, int]:
    """pgbench of `script` (prepared, `clients` clients, two threads at most): tps without
    initial connection time, and the transactions processed."""
    info = conninfo_to_dict(admin_url)
    command = [
        str(postgres_bin() / "pgbench"),
        *("-h", str(info["host"]), "-p", str(info["port"]), "-U", str(info["user"])),
        *("-n", "-f", str(script), "-M", "prepared"),
        *("-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)),
        str(info["dbname"]),
    ]
    env = {**os.environ, "PGPASSWORD": str(info["password"])}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    assert tps and done, result.stdout + result.stderr
    return float(tps.group(1)), int(done.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each")
    parser.add_argument("--quick", action="store_true", help="one round of 1 s each")
    arguments = parser.parse_args()
    seconds, rounds = arguments.seconds, arguments.rounds
    if arguments.quick:
        seconds, rounds = 1, 1

    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    rows = []
    try:
        env = topology.start()
        url, admin_url = env["INVENTORY_PRIMARY_URL"], env["INVENTORY_PRIMARY_ADMIN_URL"]
        for writers in WRITERS:
            # Interleaved rounds: a noisy neighbour slows both sides of a ratio alike.
            runs = []
            for _ in range(rounds):
                append = asyncio.run(ours(url, writers, seconds, lock_first=False))
                locked = asyncio.run(ours(url, writers, seconds, lock_first=True))
                runs.append((append, locked, pgbench(admin_url, writers, seconds, root)))
            rows.append((writers, runs))
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(rows)


def report(rows: list[tuple[int, list[tuple[float, float, float]]]]) -> None:
    """Medians of the rates and of the per-round ratios, and the goal's verdict."""
    print(
        f"{'writers':>7} | {'append/s':>9} | {'lock+append/s':>13} | {'pgbench tps':>11} | "
        f"{'ratio':>5} | {'ratio lock+append':>17}"
    )
    ratios = {}
    for writers, runs in rows:
        append, locked, theirs = (statistics.median(column) for column in zip(*runs, strict=True))
        ratio = statistics.median(run[0] / run[2] for run in runs)
        ratio_locked = statistics.median(run[1] / run[2] for run in runs)
        ratios[writers] = ratio
        print(
            f"{writers:>7} | {append:>9.1f} | {locked:>13.1f} | {theirs:>11.1f} | "
            f"{ratio:>5.2f} | {ratio_locked:>17.2f}"
        )
    verdict = "met" if ratios[16] >= GOAL else "NOT met"
    print(
        f"goal: append at 16 writers >= {GOAL:.0%} of pgbench -> {ratios[16]:.0%}, {verdict} "
        f"(medians of {len(rows[0][1])} interleaved rounds)"
    )
    figure = {
        "bench": "append",
        "metric": "append at 16 writers / pgbench",
        "value": round(ratios[16], 2),
        "goal": f">= {GOAL:.2f}",
        "met": ratios[16] >= GOAL,
    }
    print("BENCH-RESULT " + json.dumps(figure))


if __name__ == "__main__":
    main()
