"""The hash chain's cost on the append: append_events with and without it, in one run.

    uv run python bench/chain_append.py [--seconds 3] [--rounds 3] [--writers 16]

Starts a durable embedded topology in a temporary home and installs, beside today's
append_events (migrations/0081: chain row lock and link per event), the function as it
was before the chain (migrations/0010, as `append_events_unchained`). `--writers`
concurrent writers, each on its own connection and stream, append one-event commands as
fast as they can for `--seconds`, interleaved rounds, in two layouts:
  stores     every writer in its own store (stores never share a chain row);
  one store  every writer in the same store (two SKUs of one store: they queue on the
             store's chain row from their insert to their commit).
Printed: median commits per second of each, and after / before. Goal: within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
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
from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.migrations import sql_directory

GOAL = 0.90
LAYOUTS = ("stores", "one store")


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


async def rate(url: str, writers: int, seconds: float, layout: str, chained: bool) -> float:
    """Commits per second of `writers` concurrent one-event appends."""
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    deadline = time.monotonic() + seconds
    tag = f"{'c' if chained else 'u'}{layout[0]}{time.monotonic_ns()}"

    async def write(conn: psycopg.AsyncConnection, place: int) -> int:
        store = f"{tag}-{place}" if layout == "stores" else tag
        stream, commits = f"stock-{tag}-{place}", 0
        while time.monotonic() < deadline:
            event = NewEvent(Counted(value=commits), store=store, sku=str(place))
            query, args = appending(CODEC, [StreamWrite(stream, [event], ANY)]).statement
            if not chained:
                query = query.replace("append_events(", "append_events_unchained(")
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
    arguments = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    root.chmod(0o755)
    topology = EmbeddedTopology(root / "home", durable=True)
    runs: dict[tuple[str, bool], list[float]] = {}
    try:
        env = topology.start()
        install_unchained(env["INVENTORY_PRIMARY_ADMIN_URL"])
        url = env["INVENTORY_PRIMARY_URL"]
        for _ in range(arguments.rounds):
            for layout in LAYOUTS:
                for chained in (False, True):
                    measured = asyncio.run(
                        rate(url, arguments.writers, arguments.seconds, layout, chained)
                    )
                    runs.setdefault((layout, chained), []).append(measured)
    finally:
        topology.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(runs, arguments.writers)


def report(runs: dict[tuple[str, bool], list[float]], writers: int) -> None:
    """Medians per layout, with and without the chain, and the ratio against the goal."""
    print(
        f"{writers} writers | {'before/s':>9} | {'chained/s':>9} | {'ratio':>5} | goal {GOAL:.0%}"
    )
    for layout in LAYOUTS:
        before = statistics.median(runs[(layout, False)])
        after = statistics.median(runs[(layout, True)])
        verdict = "met" if after / before >= GOAL else "NOT met"
        print(f"{layout:>10} | {before:>9.1f} | {after:>9.1f} | {after / before:>5.2f} | {verdict}")


if __name__ == "__main__":
    main()
