"""A rebuild's index builds from several sessions at once (committed shadows)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg

INDEX_MEMORY = "256MB"  # maintenance_work_mem of the index builds: each sorts in memory
STEPS = "SELECT tbl, kind, name, pages FROM read_model_index_steps(%s)"


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
