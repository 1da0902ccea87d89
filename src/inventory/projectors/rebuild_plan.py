"""A rebuild's plan: the partitions and their bounds, shared out among the folds, and
which read models are folded in Python and which are built by SQL (`rebuild_sql`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from inventory.projectors.rebuild_contain import Stops
from inventory.readmodels.projection import Cursor, Projector, shadow
from inventory.readmodels.rebuild_sql import SetBuild, set_build

WORKERS = 2  # folds at once: this process and helpers (the fold is CPU-bound Python)
PARALLEL_FROM = 50_000  # events below which one fold is quicker than starting a helper

# Each partition's events and its last seq: what the rebuild reads there (events that
# reach the copy later are the live projectors', from the checkpoints it leaves).
PARTITIONS = """
SELECT partition, count(*), max(seq) FROM events GROUP BY partition ORDER BY partition
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

    @property
    def fed(self) -> tuple[list[str], list[str]]:
        """The projectors a fold feeds, and those it only watches (built by SQL)."""
        return self.folded, sorted(self.built)

    def bounds_of(self, name: str, stops: Stops) -> dict[str, int]:
        """Where projector `name` is built up to in each partition: the bound, or the
        last event before one it could not take."""
        return {
            partition: stops[(name, partition)].seq if (name, partition) in stops else bound
            for partition, bound in self.bounds.items()
        }

    def build_by_sql(
        self, into: Cursor, stops: Stops, built: dict[str, dict[str, int]] | None = None
    ) -> dict[str, dict[str, int]]:
        """Build the read models of `built` into their shadows, each up to its bounds
        (`bounds_of`), and return those built with their bounds. The first time (`built`
        None: the helpers' stops are not known yet), a statement that meets an event it
        cannot read (one a helper will stop at) is undone and left for the second, which
        empties and builds again one built up to other bounds."""
        done: dict[str, dict[str, int]] = {}
        for name, build in self.built.items():
            bounds = self.bounds_of(name, stops)
            if built is None:
                try:
                    with into.connection.transaction():  # a savepoint
                        build.build(into, bounds)
                except psycopg.errors.DataError:
                    continue
            elif built.get(name) != bounds:
                if name in built:
                    for table in self.tables[name]:
                        statement = sql.SQL("DELETE FROM {}").format(sql.Identifier(shadow(table)))
                        into.execute(statement)
                build.build(into, bounds)
            done[name] = bounds
        return done


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
    counts: dict[str, int] = {partition: count for partition, count, _ in found}
    bounds: dict[str, int] = {partition: last for partition, _, last in found}
    total = sum(counts.values())
    if on_total is not None:
        on_total(total)
    if workers is None:
        workers = WORKERS if total >= PARALLEL_FROM else 1
    groups = share_out(counts, workers) or [[]]
    built: dict[str, SetBuild] = {}
    for projector in projectors:
        build = set_build(projector.name) if set_based else None
        if build is not None and build.usable(cur):
            built[projector.name] = build
    folded = sorted(p.name for p in projectors if p.name not in built)
    shares = [{partition: bounds[partition] for partition in group} for group in groups]
    tables = {projector.name: projector.tables for projector in projectors}
    return Plan(shares, bounds, folded, built, tables)


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
