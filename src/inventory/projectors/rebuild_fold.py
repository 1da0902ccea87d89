"""A rebuild's fold: every event of some partitions read once, fed to the read models'
builders; in this process or in a helper process (`Helper`) for a share of them."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from inventory.projectors.rebuild_contain import Fed, Feeder, Stop, Stops
from inventory.readmodels.ledger_sql import StatesBuilder
from inventory.readmodels.projection import Builder, Cursor, Projector
from inventory.readmodels.rebuild_sql import set_build
from inventory.readmodels.registry import by_name

Heads = dict[str, tuple[int, int]]  # partition: last seq, highest position
Bounds = Mapping[str, int]  # partition: the last seq a rebuild reads there
# A helper's stdout lines.
FOLDED, HEADS, STOPS = b"rebuild-folded ", b"rebuild-heads ", b"rebuild-stops "

# data and metadata arrive as their JSON text's UTF-8 bytes (no str round trip).
PARTITION_EVENTS = """
SELECT seq, position, stream, version, type, store, sku, convert_to(data::text, 'UTF8'),
       convert_to(metadata::text, 'UTF8'), occurred_at, recorded_at, partition
FROM events WHERE partition = %s AND seq <= %s ORDER BY seq
"""


class RebuildFailed(RuntimeError):
    """A helper process's fold failed (its traceback is the message)."""


@contextmanager
def reader_connection(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to read the events on, in UTC: psycopg then makes their timestamps
    with `datetime.timezone.utc` instead of converting each to the server's zone (about
    0.6 us less per event). The same instants: every read model takes them as such."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        yield conn


def fold(
    reader: psycopg.Connection[Any],
    cur: Cursor,
    fed: Fed,
    bounds: Bounds,
    *,
    chunk: int,
    progress: Callable[[int], None],
) -> tuple[Heads, Stops]:
    """Feed every event of the partitions of `bounds`, up to each one's bound seq, to the
    builders of `fed` (reading on `reader`, writing with `cur`, chunk by chunk); returns
    each partition's last seq and highest position, and where projectors stopped."""
    heads: Heads = {}
    stops: Stops = {}
    for partition, bound in bounds.items():
        feeder = Feeder(fed, partition, stops)
        # A server-side cursor, fetched a chunk at a time (binary: no text parsing).
        with reader.transaction(), reader.cursor("rebuild_events", binary=True) as source:
            source.itersize = chunk
            source.execute(PARTITION_EVENTS, (partition, bound))
            while rows := source.fetchmany(chunk):
                feeder.feed(rows)
                for _, builder in fed.builders:
                    builder.flush(cur)
                progress(len(rows))
        if feeder.last:
            heads[partition] = feeder.before()
    return heads, stops


class Helper:
    """A helper process (`python -m inventory.projectors.rebuild_helper`) folding a group
    of partitions into the committed shadows: its arguments on stdin as JSON; on stdout a
    FOLDED line per chunk folded (the count), then a HEADS line (JSON) once it has
    committed."""

    def __init__(
        self, url: str, fed: tuple[list[str], list[str], list[str]], bounds: Bounds, chunk: int
    ) -> None:
        # stderr to a file: a pipe read only at the end could fill and stall the helper.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 # closed by _close
        self.process = subprocess.Popen(
            [sys.executable, "-m", "inventory.projectors.rebuild_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )
        assert self.process.stdin is not None
        names, watched, stated = fed
        arguments = {
            "url": url,
            "names": names,
            "watched": watched,
            "stated": stated,
            "bounds": list(bounds.items()),
            "chunk": chunk,
        }
        self.process.stdin.write(json.dumps(arguments).encode())
        self.process.stdin.close()
        self.folded = 0  # counted by the reader thread, taken by `progressed`
        self.taken = 0
        self.heads: Heads | None = None
        self.stops: Stops = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # other lines (a library's output) are not ours
            if line.startswith(HEADS):
                found = json.loads(line.removeprefix(HEADS))
                self.heads = {part: (seq, pos) for part, (seq, pos) in found.items()}
            elif line.startswith(STOPS):
                stops = [Stop.from_json(v) for v in json.loads(line.removeprefix(STOPS))]
                self.stops = {(s.stall.projector, s.stall.partition): s for s in stops}
            elif line.startswith(FOLDED):
                self.folded += int(line.removeprefix(FOLDED))

    def progressed(self) -> int:
        """Events folded since the last call."""
        folded = self.folded
        delta, self.taken = folded - self.taken, folded
        return delta

    def stop(self) -> None:
        """End the helper if it still runs (its transaction rolls back with its session)."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
        self._close()

    def _close(self) -> str:
        """Close the pipes; what the helper wrote on stderr."""
        errors = ""
        if not self.errors.closed:
            self.errors.seek(0)
            errors = self.errors.read().decode(errors="replace")
            self.errors.close()
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return errors

    def wait(self, progress: Callable[[int], None]) -> tuple[Heads, Stops]:
        """The helper's heads and stops once it has committed; RebuildFailed if it failed."""
        while self.process.poll() is None:
            progress(self.progressed())
            time.sleep(0.05)
        self.reader.join()
        progress(self.progressed())
        errors = self._close()
        if self.process.returncode != 0 or self.heads is None:
            raise RebuildFailed(f"rebuild helper exited with {self.process.returncode}: {errors}")
        return self.heads, self.stops


def collected(helpers: Sequence[Helper]) -> int:
    return sum(helper.progressed() for helper in helpers)


def fed_of(
    names: Sequence[str],
    watched: Sequence[str],
    stated: Sequence[str] = (),
    projectors: Sequence[Projector] = (),
) -> Fed:
    """Fresh builders for the projectors `names` (those of `projectors`, else the
    registry's; for those `stated`, the stock fold without its ledger), watchers for the
    `watched` (built by SQL)."""
    given = {projector.name: projector for projector in projectors}
    builders: list[tuple[str, Builder]] = [
        (name, StatesBuilder() if name in stated else (given.get(name) or by_name(name)).builder())
        for name in names
    ]
    watchers: list[tuple[str, Callable[[str], bool]]] = []
    for name in watched:
        build = set_build(name)
        assert build is not None, name
        watchers.append((name, build.decodes.__contains__))
    return Fed(builders, watchers)


def help_fold(
    url: str, fed: tuple[list[str], list[str], list[str]], bounds: Bounds, chunk: int
) -> None:
    """A helper's work: fold the partitions of `bounds` in a transaction of its own,
    commit, print the stops and heads (see `Helper`)."""

    def tick(count: int) -> None:
        sys.stdout.write(f"{FOLDED.decode()}{count}\n")
        sys.stdout.flush()

    folds = fed_of(*fed)
    with (
        reader_connection(url) as reader,
        psycopg.connect(url) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        heads, stops = fold(reader, cur, folds, bounds, chunk=chunk, progress=tick)
        for _, builder in folds.builders:
            builder.finish(cur)
    sys.stdout.write(f"{STOPS.decode()}{json.dumps([s.as_json() for s in stops.values()])}\n")
    sys.stdout.write(f"{HEADS.decode()}{json.dumps(heads)}\n")
    sys.stdout.flush()
