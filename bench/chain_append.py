"""The hash chain's cost on the append: append_events with and without it, in one run.

    uv run python bench/chain_append.py [--seconds 3] [--rounds 3] [--writers 16] [--quick]

Starts a durable embedded topology in a temporary home and installs, beside today's
append_events (migrations/0095: a lock per store, a link per event), the function as it
was before the chain (migrations/0010, as `append_events_unchained`). `--writers`
concurrent writers, each on its own connection and stream, append one-event commands as
fast as they can for `--seconds`, interleaved rounds, in two layouts:
  stores     every writer in its own store (stores never share a chain lock);
  one store  every writer in the same store (two SKUs of one store: they queue on the
             store's chain lock from their insert to their commit).
Three ways to append, interleaved:
  before     append_events_unchained, one autocommit statement;
  statement  today's append_events, one autocommit statement;
  command    today's append_events as a command's transaction sends it
             (eventstore/transaction.py): BEGIN, synchronous_commit off for the
             transaction (its locks go before the WAL flush), the append, COMMIT, and the
             durable marker that returns once that commit is flushed, in one round trip.
Printed: median commits per second of each, and after / before. Goal: within 10%.
`--quick`: one round of 1.5 s (under a minute with the servers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
import psycopg

from inventory.eventstore.append import appending
from inventory.eventstore.codec import Codec
from inventory.eventstore.records import ANY, NewEvent, StreamWrite
from inventory.eventstore.transaction import DURABLE, EARLY_RELEASE
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.migrations import sql_directory

GOAL = 0.90
LAYOUTS = ("stores", "one store")
MODES = ("before", "statement", "command")


class Counted(msgspec.Struct, frozen=True, tag="test.counted"):
    """The test event of tests/events.py (bench/ cannot import tests/)."""

    value: int


CODEC = Codec([Counted])


def install_unchained(admin_url: str) -> None:
    """append_events as migrations/0010 defined it, under another name."""
    text = (sql_directory("migrations") / "0010_append_events_by_key.sql").read_text()
    text = text.replace("FUNCTION append_events(", "FUNCTION append_events_unchained(")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(text.encode())
        conn.execute("GRANT EXECUTE ON FUNCTION append_events_unchained TO inventory_app")


async def rate(url: str, writers: int, seconds: float, layout: str, mode: str) -> float:
    """Commits per second of `writers` concurrent one-event appends sent the `mode` way."""
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    deadline = time.monotonic() + seconds
    tag = f"{mode[0]}{layout[0]}{time.monotonic_ns()}"

    async def write(conn: psycopg.AsyncConnection, place: int) -> int:
        store = f"{tag}-{place}" if layout == "stores" else tag
        stream, commits = f"stock-{tag}-{place}", 0
        while time.monotonic() < deadline:
            event = NewEvent(Counted(value=commits), store=store, sku=str(place))
            query, args = appending(CODEC, [StreamWrite(stream, [event], ANY)]).statement
            if mode == "before":
                query = query.replace("append_events(", "append_events_unchained(")
            if mode == "command":
                async with psycopg.AsyncClientCursor(conn) as cur:
                    bound = cur.mogrify(query, args)
                    await cur.execute(f"BEGIN; {EARLY_RELEASE}; {bound}; COMMIT; {DURABLE}")
            else:
                await conn.execute(query, args)
            commits += 1
        return commits

    try:
        started = time.monotonic()
        counts = await asyncio.gather(*(write(conn, i) for i, conn in enumerate(conns)))
        return sum(counts) / (time.monotonic() - started)
    finally:
        for conn in conns:
            await conn.close()


def main() -> None:
    """Start the servers, run the interleaved rounds, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="duration of each run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each")
    parser.add_argument("--writers", type=int, default=16, help="concurrent writers")
    parser.add_argument("--quick", action="store_true", help="one round of 1.5 s")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.seconds, arguments.rounds = 1.5, 1
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    runs: dict[tuple[str, str], list[float]] = {}
    try:
        env = topology.start()
        install_unchained(env["INVENTORY_PRIMARY_ADMIN_URL"])
        url = env["INVENTORY_PRIMARY_URL"]
        for _ in range(arguments.rounds):
            for layout in LAYOUTS:
                for mode in MODES:
                    measured = asyncio.run(
                        rate(url, arguments.writers, arguments.seconds, layout, mode)
                    )
                    runs.setdefault((layout, mode), []).append(measured)
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(runs, arguments.writers)


def report(runs: dict[tuple[str, str], list[float]], writers: int) -> None:
    """Medians per layout and way, the ratios against the goal, and BENCH-RESULT lines."""
    print(
        f"{writers} writers | {'before/s':>9} | {'statement/s':>11} | {'ratio':>5} |"
        f" {'command/s':>9} | {'ratio':>5} | goal {GOAL:.0%}"
    )
    for layout in LAYOUTS:
        before, statement, command = (statistics.median(runs[(layout, m)]) for m in MODES)
        print(
            f"{layout:>10} | {before:>9.1f} | {statement:>11.1f} | {statement / before:>5.2f} |"
            f" {command:>9.1f} | {command / before:>5.2f}"
        )
        for mode, after in (("statement", statement), ("command", command)):
            figure = {
                "bench": "chain_append",
                "metric": f"{layout} / {mode}: chained / before",
                "value": round(after / before, 2),
                "goal": f">= {GOAL:.2f}",
                "met": after / before >= GOAL,
            }
            print("BENCH-RESULT " + json.dumps(figure))


if __name__ == "__main__":
    main()
