"""Append throughput: our EventStore.append against pgbench doing the same SQL.

    uv run python bench/append.py [--seconds 10]

Starts a durable embedded topology in a temporary home and, for 1, 16 and 64
concurrent writers, counts one-event commands committed per second through
`EventStore.append` (each writer on its own connection and stream), then runs pgbench
with a script doing the equivalent lock / insert / update in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import psycopg
from psycopg.conninfo import conninfo_to_dict

from inventory.eventstore.codec import Codec
from inventory.eventstore.store import ANY, EventStore, NewEvent, StreamWrite
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.postgres import POSTGRES_BIN_PATH

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


async def ours(url: str, writers: int, seconds: float) -> float:
    """Commits per second of `writers` concurrent one-event appends, each to its own stream."""
    store = EventStore(Codec([Counted]))
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    deadline = time.monotonic() + seconds

    async def write(conn: psycopg.AsyncConnection, stream: str) -> int:
        commits = 0
        while time.monotonic() < deadline:
            event = Counted(value=commits)
            async with conn.transaction():
                await store.append(conn, [StreamWrite(stream, [NewEvent(event)], ANY, event)])
            commits += 1
        return commits

    try:
        started = time.monotonic()
        counts = await asyncio.gather(
            *(write(conn, f"bench-{writers}-{i}") for i, conn in enumerate(conns))
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
            "SELECT %s || i, 0 FROM generate_series(0, %s - 1) AS i",
            (prefix, clients),
        )
    script = workdir / f"append-{clients}.sql"
    script.write_text(PGBENCH_SCRIPT.format(prefix=prefix))
    info = conninfo_to_dict(admin_url)
    command = [
        str(POSTGRES_BIN_PATH / "pgbench"),
        *("-h", str(info["host"]), "-p", str(info["port"]), "-U", str(info["user"])),
        *("-n", "-f", str(script), "-M", "prepared"),
        *("-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)),
        str(info["dbname"]),
    ]
    env = {**os.environ, "PGPASSWORD": str(info["password"])}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    seconds = parser.parse_args().seconds

    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    try:
        env = topology.start()
        rows = []
        for writers in WRITERS:
            mine = asyncio.run(ours(env["INVENTORY_PRIMARY_URL"], writers, seconds))
            theirs = pgbench(env["INVENTORY_PRIMARY_ADMIN_URL"], writers, seconds, root)
            rows.append((writers, mine, theirs))
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)

    print(f"{'writers':>7} | {'ours commits/s':>14} | {'pgbench tps':>11} | {'ratio':>5}")
    for writers, mine, theirs in rows:
        print(f"{writers:>7} | {mine:>14.1f} | {theirs:>11.1f} | {mine / theirs:>5.2f}")
    ratio = {writers: mine / theirs for writers, mine, theirs in rows}[16]
    verdict = "met" if ratio >= GOAL else "NOT met"
    print(f"goal: ours at 16 writers >= {GOAL:.0%} of pgbench -> {ratio:.0%}, {verdict}")


if __name__ == "__main__":
    main()
