"""Online rebuilds: every event read once, folded in memory, COPYed into shadow tables.

One replica transaction, the rebuild's, holds it all together:

1. it takes each projector's advisory lock exclusively (`engine.LOCK_PREFIX`): a worker
   batch of those projectors, which takes it shared first, waits from then on, and one
   in flight is waited for;
2. it creates empty shadow tables without indexes (`read_model_shadow`, a function of
   projections/0022_rebuild_shadows.sql: the tables belong to the migrations' role);
3. it reads the events copy once, partition by partition (each partition's events in seq
   order, through a binary server-side cursor: one snapshot per partition), decodes each
   event once, feeds it to every projector's `Builder`, and COPYs the rows in. With more
   than one fold (`workers`), the partitions are shared out by event count between this
   process and helper processes; the rows of an item, a store's day or a product
   each come from one partition's events, so each fold is exact on its share; a read
   model with rows from several partitions (a stream's head: a transfer has events in
   two stores) merges the folds' rows after them (`Projector.merge_folds`). The folds
   then write into the shadows from their own transactions, so the shadows are created
   (empty, invisible to queries) in a transaction of their own first;
4. it indexes and analyses the shadows: in its transaction with one fold
   (`read_model_index`), or, the folds' rows committed, from one session per fold at
   once (`index_steps`); then it locks the old tables (a quarter of a second at a time,
   so readers never queue long behind a long query), drops them and renames the shadows
   in their place (`read_model_swap`);
5. it replaces the projectors' checkpoints with the last seq and position it read in
   each partition, and commits.

Until the commit, queries read the old tables; at the commit the new ones take over at
once, and the waiting worker batches resume from the new checkpoints. If anything
fails, the transaction rolls back and the committed shadows, if any, are dropped under
the same advisory locks (`read_model_discard`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from inventory.projectors.decoding import domain_event
from inventory.projectors.engine import LOCK_PREFIX, Builder, Cursor, Projector, ReplicaEvent
from inventory.projectors.registry import by_name

CHUNK = 5000
SWAP_WAIT_MS = 250
WORKERS = 2  # folds at once: this process and helpers (the fold is CPU-bound Python)
PARALLEL_FROM = 50_000  # events below which one fold is quicker than starting a helper
INDEX_MEMORY = "256MB"  # maintenance_work_mem of the index builds: each sorts in memory

Heads = dict[str, tuple[int, int]]  # partition: last seq, highest position
FOLDED, HEADS = b"rebuild-folded ", b"rebuild-heads "  # a helper's stdout lines

PARTITIONS = "SELECT partition, count(*) FROM events GROUP BY partition ORDER BY partition"
# data and metadata arrive as their JSON text's UTF-8 bytes (no str round trip).
PARTITION_EVENTS = """
SELECT seq, position, stream, version, type, store, sku, convert_to(data::text, 'UTF8'),
       convert_to(metadata::text, 'UTF8'), occurred_at, recorded_at, partition
FROM events WHERE partition = %s ORDER BY seq
"""
STEPS = "SELECT tbl, kind, name, pages FROM read_model_index_steps(%s)"
CHECKPOINT = """
INSERT INTO projector_checkpoints (projector, partition, seq, position)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
"""


class RebuildFailed(RuntimeError):
    """A helper process's fold failed (its traceback is the message)."""


def rebuild(
    url: str,
    projectors: Sequence[Projector],
    progress: Callable[[int], None],
    *,
    chunk: int = CHUNK,
    workers: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_phase: Callable[[str], None] = lambda _: None,
) -> int:
    """Rebuild `projectors` in one transaction on the replica at `url`; returns the events
    read. `workers`: folds at once (None: WORKERS from PARALLEL_FROM events, else one).
    `on_phase` is called with each phase's name as it ends (for benchmarks)."""
    names = sorted(p.name for p in projectors)
    tables = [table for p in projectors for table in p.tables]
    helpers: list[_Helper] = []
    committed = False  # shadows made in a transaction of their own (for helpers)
    read = 0

    def count(n: int) -> None:
        nonlocal read
        read += n
        progress(n)

    with psycopg.connect(url) as conn:
        try:
            with conn.transaction(), conn.cursor() as cur:
                _lock(cur, names)
                groups = _groups(cur, workers, on_total)
                committed = len(groups) > 1
                _shadows(url, cur, tables, committed=committed)
                helpers.extend(_Helper(url, names, group, chunk) for group in groups[1:])
                builders = [p.builder() for p in projectors]
                on_phase("shadows")
                with (
                    _reader(url) as reader,
                    _writer(url, conn, committed=committed) as out,
                    out.transaction(),
                    out.cursor() as into,
                ):
                    heads = fold(reader, into, builders, groups[0], chunk=chunk,
                                 progress=lambda n: count(n + _collect(helpers)))  # fmt: skip
                    on_phase("fold")
                    for builder in builders:
                        builder.finish(into)
                    on_phase("finish")
                    for helper in helpers:
                        heads.update(helper.wait(count))
                    on_phase("helpers")
                    if helpers:
                        for projector in projectors:
                            projector.merge_folds(into)
                on_phase("merge")
                if committed:
                    index_steps(url, tables, sessions=len(groups))
                else:
                    # Index builds sort every row once: in memory rather than on disk.
                    cur.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                                (INDEX_MEMORY,))  # fmt: skip
                    cur.execute("SELECT read_model_index(%s)", (tables,))
                on_phase("index")
                _swap(conn, names, tables, heads)
                on_phase("swap")
        except BaseException:
            for helper in helpers:
                helper.stop()
            if committed:
                _discard(url, names, tables)
            raise
    return read


@contextmanager
def _reader(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to read the events on, in UTC: psycopg then makes their timestamps
    with `datetime.timezone.utc` instead of converting each to the server's zone (about
    0.6 us less per event). The same instants: every read model takes them as such."""
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.commit()
        yield conn


@contextmanager
def _writer(
    url: str, conn: psycopg.Connection[Any], *, committed: bool
) -> Iterator[psycopg.Connection[Any]]:
    """Where this process's fold writes: with committed shadows, a connection of its own
    (its transaction commits once the folds are merged, so other sessions can index the
    rows); otherwise the rebuild's own connection (a savepoint in its transaction)."""
    if not committed:
        yield conn
        return
    with psycopg.connect(url) as own:
        yield own


def index_steps(url: str, tables: Sequence[str], *, sessions: int) -> None:
    """Build the committed shadows' constraints and indexes, then analyse them, from
    `sessions` connections at once: each takes the next step (read_model_index_step, the
    largest tables' first, constraints before indexes) in a transaction of its own, one
    sort each on one core, so the sessions keep every core busy with no parallel-sort
    overhead. A step waits at most for another on the same table (an ADD PRIMARY KEY
    locks its table). The ANALYZEs follow every index (as in read_model_index, they then
    see the expression indexes)."""
    with psycopg.connect(url, autocommit=True) as conn:
        steps = conn.execute(STEPS, (list(tables),)).fetchall()
    order = {"constraint": 0, "index": 1}
    builds = [s for s in steps if s[1] != "analyze"]
    builds.sort(key=lambda step: (-step[3], order[step[1]]))
    analyses = sorted((s for s in steps if s[1] == "analyze"), key=lambda step: -step[3])
    workers = max(sessions, 1)
    for phase in (builds, analyses):
        pending = deque((table, kind, name) for table, kind, name, _ in phase)
        failed = threading.Event()
        with ThreadPoolExecutor(workers) as pool:
            runs = [pool.submit(_run_steps, url, pending, failed) for _ in range(workers)]
            for run in runs:
                run.result()


Step = tuple[str, str, str | None]  # table, kind, constraint or index name


def _run_steps(url: str, pending: deque[Step], failed: threading.Event) -> None:
    """Take steps from `pending` (shared: deque pops are atomic) until none is left or a
    session failed."""
    with psycopg.connect(url, autocommit=True) as session:
        session.execute("SET max_parallel_maintenance_workers = 0")
        session.execute("SELECT set_config('maintenance_work_mem', %s, false)", (INDEX_MEMORY,))
        while not failed.is_set():
            try:
                step = pending.popleft()
            except IndexError:
                return
            try:
                session.execute("SELECT read_model_index_step(%s, %s, %s)", step)
            except BaseException:
                failed.set()
                raise


def _lock(cur: Cursor, names: Sequence[str]) -> None:
    for name in names:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + name,))


def _groups(
    cur: Cursor, workers: int | None, on_total: Callable[[int], None] | None
) -> list[list[str]]:
    """The partitions shared out among the folds (one group at least, maybe empty)."""
    cur.execute(PARTITIONS)
    counts: dict[str, int] = dict(cur.fetchall())
    total = sum(counts.values())
    if on_total is not None:
        on_total(total)
    if workers is None:
        workers = WORKERS if total >= PARALLEL_FROM else 1
    return share_out(counts, workers) or [[]]


def _shadows(url: str, cur: Cursor, tables: list[str], *, committed: bool) -> None:
    """Empty shadows: in the rebuild's transaction, or committed for helpers to fill."""
    if committed:
        with psycopg.connect(url, autocommit=True) as side:
            side.execute("SELECT read_model_shadow(%s)", (tables,))
    else:
        cur.execute("SELECT read_model_shadow(%s)", (tables,))


def _swap(
    conn: psycopg.Connection[Any], names: Sequence[str], tables: list[str], heads: Heads
) -> None:
    """Swap the indexed shadows in, replace the checkpoints (in the transaction)."""
    with conn.cursor() as cur:
        _lock_old_tables(conn, tables)
        cur.execute("SELECT read_model_swap(%s)", (tables,))
        cur.execute("DELETE FROM projector_checkpoints WHERE projector = ANY(%s)", (names,))
        pairs = [(n, part, seq, pos) for n in names for part, (seq, pos) in heads.items()]
        cur.execute(CHECKPOINT, [list(column) for column in zip(*pairs, strict=True)] or
                    [[], [], [], []])  # fmt: skip


def share_out(counts: dict[str, int], workers: int) -> list[list[str]]:
    """The partitions in up to `workers` groups of about equal event counts (the largest
    partition first, each to the lightest group); each group's partitions in name order."""
    groups: list[tuple[int, list[str]]] = [
        (0, []) for _ in range(max(min(workers, len(counts)), 1))
    ]
    for partition in sorted(counts, key=lambda p: (-counts[p], p)):
        lightest = min(range(len(groups)), key=lambda i: groups[i][0])
        load, members = groups[lightest]
        groups[lightest] = (load + counts[partition], [*members, partition])
    return [sorted(members) for _, members in groups if members]


def fold(
    reader: psycopg.Connection[Any],
    cur: Cursor,
    builders: Sequence[Builder],
    partitions: Sequence[str],
    *,
    chunk: int,
    progress: Callable[[int], None],
) -> Heads:
    """Feed every event of `partitions` to `builders` (reading on `reader`, writing with
    `cur`, chunk by chunk); returns each partition's last seq and highest position."""
    prefixes = tuple(prefix for b in builders for prefix in b.prefixes)
    heads: Heads = {}
    for partition in partitions:
        last = highest = -1
        # A server-side cursor, fetched a chunk at a time (binary: no text parsing).
        with reader.transaction(), reader.cursor("rebuild_events", binary=True) as source:
            source.itersize = chunk
            source.execute(PARTITION_EVENTS, (partition,))
            while rows := source.fetchmany(chunk):
                for row in rows:
                    event = ReplicaEvent(*row)
                    decoded = domain_event(event) if event.type.startswith(prefixes) else None
                    for builder in builders:
                        builder.feed(event, decoded)
                    highest = max(highest, event.position)
                last = rows[-1][0]
                for builder in builders:
                    builder.flush(cur)
                progress(len(rows))
        if last >= 0:
            heads[partition] = (last, highest)
    return heads


class _Helper:
    """A helper process (`python -m inventory.projectors.rebuild_helper`) folding a group
    of partitions into the committed shadows: its arguments on stdin as JSON; on stdout a
    FOLDED line per chunk folded (the count), then a HEADS line (JSON) once it has
    committed."""

    def __init__(self, url: str, names: list[str], partitions: list[str], chunk: int) -> None:
        # stderr to a file: a pipe read only at the end could fill and stall the helper.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 # closed by _close
        self.process = subprocess.Popen(
            [sys.executable, "-m", "inventory.projectors.rebuild_helper"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
        )
        assert self.process.stdin is not None
        arguments = {"url": url, "names": names, "partitions": partitions, "chunk": chunk}
        self.process.stdin.write(json.dumps(arguments).encode())
        self.process.stdin.close()
        self.folded = 0  # counted by the reader thread, taken by `progressed`
        self.taken = 0
        self.heads: Heads | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # other lines (a library's output) are not ours
            if line.startswith(HEADS):
                found = json.loads(line.removeprefix(HEADS))
                self.heads = {part: (seq, pos) for part, (seq, pos) in found.items()}
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

    def wait(self, progress: Callable[[int], None]) -> Heads:
        """The helper's heads once it has committed; RebuildFailed if it failed."""
        while self.process.poll() is None:
            progress(self.progressed())
            time.sleep(0.05)
        self.reader.join()
        progress(self.progressed())
        errors = self._close()
        if self.process.returncode != 0 or self.heads is None:
            raise RebuildFailed(f"rebuild helper exited with {self.process.returncode}: {errors}")
        return self.heads


def _collect(helpers: Sequence[_Helper]) -> int:
    return sum(helper.progressed() for helper in helpers)


def help_fold(url: str, names: list[str], partitions: list[str], chunk: int) -> None:
    """A helper's work: fold `partitions` in a transaction of its own, commit, print the
    heads (see `_Helper`)."""

    def tick(count: int) -> None:
        sys.stdout.write(f"{FOLDED.decode()}{count}\n")
        sys.stdout.flush()

    builders = [by_name(name).builder() for name in names]
    with (
        _reader(url) as reader,
        psycopg.connect(url) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        heads = fold(reader, cur, builders, partitions, chunk=chunk, progress=tick)
        for builder in builders:
            builder.finish(cur)
    sys.stdout.write(f"{HEADS.decode()}{json.dumps(heads)}\n")
    sys.stdout.flush()


def _discard(url: str, names: Sequence[str], tables: Sequence[str]) -> None:
    """Drop committed shadows of a failed rebuild, under its projectors' locks (so never
    the shadows of another rebuild that started since)."""
    try:
        with psycopg.connect(url) as conn, conn.transaction(), conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK_PREFIX + name,))
            cur.execute("SELECT read_model_discard(%s)", (list(tables),))
    except psycopg.Error:
        pass  # the next rebuild drops them first anyway


def _lock_old_tables(conn: psycopg.Connection[Any], tables: Sequence[str]) -> None:
    """ACCESS EXCLUSIVE on every old table, tried for SWAP_WAIT at a time: a query that
    holds one (a long report) is waited for, but the queries that queue behind the lock
    request wait at most SWAP_WAIT per attempt, not for as long as that query runs."""
    statement = sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(table) for table in tables)
    )
    pause = 0.05
    while True:
        try:
            with conn.transaction(), conn.cursor() as cur:  # a savepoint
                cur.execute(f"SET LOCAL lock_timeout = '{SWAP_WAIT_MS}ms'")
                cur.execute(statement)
                cur.execute("SET LOCAL lock_timeout = DEFAULT")
        except psycopg.errors.LockNotAvailable:
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        else:
            return
