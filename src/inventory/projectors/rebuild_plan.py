"""A rebuild's plan: the partitions and their bounds, shared out among the folds, and
which read models are folded in Python and which are built by SQL (`rebuild_sql`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from inventory.projectors.rebuild_contain import Stops
from inventory.readmodels.ledger_sql import LedgerBuild
from inventory.readmodels.projection import Cursor, Projector, shadow
from inventory.readmodels.rebuild_sql import SetBuild, set_build
from inventory.readmodels.stock_levels.projector import StockLevels

STOCK = StockLevels.name

WORKERS = 2  # folds at once: this process and helpers (the fold is CPU-bound Python)
PARALLEL_FROM = 50_000  # events below which one fold is quicker than starting a helper
# Events this process folds while a helper process starts (about 0.4 s of imports).
HELPER_START = 15_000
# With the ledger by SQL, this process also runs the statement for its own partitions
# while the helper folds on (about 7 us an event against a fold's 18): it takes fewer.
LEDGER_HELPER_START = 8_000

# Each partition's events and its last seq: what the rebuild reads there (events that
# reach the copy later are the live projectors', from the checkpoints it leaves).
Built = dict[str, dict[str, int]]  # projector: the bounds its read model was built up to
PARTITIONS = """
SELECT partition, count(*), max(seq), max(position) FROM events
GROUP BY partition ORDER BY partition
"""


@dataclass
class Plan:
    """The folds' groups of partitions (each with its bounds), the projectors folded and
    those built by SQL."""

    groups: list[dict[str, int]]
    bounds: dict[str, int]
    folded: list[str]
    built: dict[str, SetBuild]
    tables: dict[str, tuple[str, ...]]  # projector: its tables
    positions: dict[str, int]  # partition: its highest position up to its bound
    total: int = 0  # events up to the bounds
    ledger: bool = False  # the stock ledger by SQL (`ledger_sql`), the rest of stock folded

    @property
    def needs_fold(self) -> bool:
        """Whether any event must be read in Python: for a projector folded, or for one
        built by SQL that stops at an event it cannot decode."""
        return bool(self.folded) or any(build.decodes for build in self.built.values())

    def heads(self) -> dict[str, tuple[int, int]]:
        """Each partition's last seq and highest position, as a fold would find them."""
        return {p: (bound, self.positions[p]) for p, bound in self.bounds.items()}

    @property
    def fed(self) -> tuple[list[str], list[str], list[str]]:
        """The projectors a fold feeds, those it only watches (built by SQL), and those
        folded without the tables built by SQL after the folds (the stock ledger)."""
        return self.folded, sorted(self.built), [STOCK] if self.ledger else []

    def build_ledger(self, into: Cursor, stops: Stops, partitions: Collection[str]) -> None:
        """The stock ledger by SQL (when the plan says so) of `partitions`, up to the stock
        projector's bounds there, once their folds are done: they wrote the rows of the
        items SQL cannot give."""
        bounds = {p: seq for p, seq in self.bounds_of(STOCK, stops).items() if p in partitions}
        if self.ledger and bounds:
            LedgerBuild().build(into, bounds)

    def bounds_of(self, name: str, stops: Stops) -> dict[str, int]:
        """Where projector `name` is built up to in each partition: the bound, or the
        last event before one it could not take."""
        return {
            partition: stops[(name, partition)].seq if (name, partition) in stops else bound
            for partition, bound in self.bounds.items()
        }

    def build_by_sql(
        self, into: Cursor, stops: Stops, built: Built | None = None, *, final: bool = True
    ) -> Built:
        """Build the read models of `built` into their shadows, each up to its bounds
        (`bounds_of`), and return those built with their bounds; one `built` already up
        to the same bounds is left, one up to others emptied and built again. Not `final`
        (the helpers' stops not known yet), a statement that meets an event it cannot
        read (one a helper will stop at) is undone and left for the final pass."""
        done: Built = {}
        for name, build in self.built.items():
            bounds = self.bounds_of(name, stops)
            if built is not None and built.get(name) == bounds:
                done[name] = bounds
                continue
            if built is not None and name in built:
                for table in self.tables[name]:
                    into.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(shadow(table))))
            try:
                with into.connection.transaction():  # a savepoint
                    build.build(into, bounds)
            except psycopg.errors.DataError:
                if final:
                    raise
                continue
            done[name] = bounds
        return done


class SideBuild:
    """The SQL builds up to the plan's bounds, on a connection of their own, in a thread
    (waiting on the server) while the folds run: committed shadows only."""

    def __init__(self, url: str, plan: Plan) -> None:
        self.url, self.plan = url, plan
        self.built: Built = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with psycopg.connect(self.url) as conn, conn.transaction(), conn.cursor() as cur:
                self.built = self.plan.build_by_sql(cur, {}, final=False)
        except BaseException as error:  # noqa: BLE001 # raised in the rebuild's thread
            self.error = error

    def result(self) -> Built:
        """What was built (committed), once done; its error, if it failed."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.built


def make_plan(
    cur: Cursor,
    projectors: Sequence[Projector],
    workers: int | None,
    on_total: Callable[[int], None] | None,
    *,
    set_based: bool = True,
) -> Plan:
    """The plan of a rebuild of `projectors`, read in the rebuild's transaction (with
    `set_based` False, every read model is folded)."""
    cur.execute(PARTITIONS)
    found = cur.fetchall()
    counts: dict[str, int] = {partition: count for partition, count, _, _ in found}
    bounds: dict[str, int] = {partition: last for partition, _, last, _ in found}
    positions: dict[str, int] = {partition: highest for partition, _, _, highest in found}
    total = sum(counts.values())
    if on_total is not None:
        on_total(total)
    built: dict[str, SetBuild] = {}
    for projector in projectors:
        build = set_build(projector.name) if set_based else None
        if build is not None and build.usable(cur):
            built[projector.name] = build
    folded = sorted(p.name for p in projectors if p.name not in built)
    tables = {projector.name: projector.tables for projector in projectors}
    plan = Plan([], bounds, folded, built, tables, positions, total)
    plan.ledger = set_based and any(isinstance(p, StockLevels) for p in projectors)
    head_start = HELPER_START if not plan.ledger else LEDGER_HELPER_START
    head_start = head_start if workers is None else 0  # as many folds as asked for
    if not plan.needs_fold:
        workers = 1  # nothing to fold: no helper
    elif workers is None:
        workers = WORKERS if total >= PARALLEL_FROM else 1
    groups = share_out(counts, workers, head_start) or [[]]
    plan.groups = [{partition: bounds[partition] for partition in group} for group in groups]
    return plan


def share_out(counts: dict[str, int], workers: int, head_start: int = 0) -> list[list[str]]:
    """The partitions in up to `workers` groups of about equal event counts (the largest
    partition first, each to the lightest group), the first group (this process's)
    `head_start` events more; each group's partitions in name order."""
    groups: list[tuple[int, list[str]]] = [
        (head_start if index else 0, []) for index in range(max(min(workers, len(counts)), 1))
    ]
    for partition in sorted(counts, key=lambda p: (-counts[p], p)):
        lightest = min(range(len(groups)), key=lambda i: groups[i][0])
        load, members = groups[lightest]
        groups[lightest] = (load + counts[partition], [*members, partition])
    return [sorted(members) for _, members in groups if members]
