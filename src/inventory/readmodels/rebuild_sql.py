"""Read models a rebuild builds by set-based SQL over the events copy, not a Python fold.

`stream_heads` and `daily_movements` need no domain fold: a head is a `GROUP BY` stream,
a day's total a `GROUP BY` store, local day, SKU and type, once each movement knows the
zone its store had when it was folded. The statements write the rows the Python builders
(`HeadsBuilder`, `MovementsBuilder`) write, over the events of each partition up to a
bound seq (the rebuild's checkpoint there, or the event before one a projector cannot
apply: `bounds`). The rebuild still decodes the event types a projector's live `apply`
decodes, so an event it cannot decode stops it there as it stops the live projector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from inventory.domain.zones import is_known
from inventory.readmodels.daily_movements import MOVEMENT_TYPES, ZONE_TYPES
from inventory.readmodels.projection import Cursor, shadow

# The events of each partition up to its bound (partitions not named: none of theirs).
BOUNDED = """
bounded AS (
    SELECT e.* FROM unnest(%(partitions)s::text[], %(lasts)s::bigint[]) AS b(partition, last)
    JOIN events AS e ON e.partition = b.partition AND e.seq <= b.last
)"""

# Partitions are folded in Python's str order, "C" collation's: a head's partition is
# the first that met the stream, as one fold or `StreamHeads.merge_folds` leaves it.
HEADS = (
    "WITH"
    + BOUNDED
    + """
INSERT INTO {table} (stream, partition, version, last_seq)
SELECT stream, min(partition COLLATE "C"), max(version), max(seq) FROM bounded GROUP BY stream
"""
)

# A zone event (`store.opened`, or `store.updated` naming a zone) holds from itself to the
# next of its store in fold order (partition, then seq); a movement takes the one it
# falls in, or UTC before any. `zones` maps each zone name to the one PostgreSQL uses:
# itself, or UTC for a name the domain does not know (`inventory.domain.zones.zone`).
# Days outside datetime's range are its first or last (`inventory.domain.window`); only
# an instant within a day of them can be such (the cheap test first). The events are
# scanned twice rather than materialised once: the zone events through the type index.
ZONE_EVENTS = """
SELECT e.data->>'store_id' AS store, e.partition COLLATE "C" AS part, e.seq,
       coalesce(e.data->>'timezone', 'UTC') AS name
FROM unnest(%(partitions)s::text[], %(lasts)s::bigint[]) AS b(partition, last)
JOIN events AS e ON e.partition = b.partition AND e.seq <= b.last
WHERE e.type = 'store.opened' OR (e.type = 'store.updated' AND e.data->>'timezone' IS NOT NULL)
"""
MOVEMENTS = (
    "WITH changes AS ("
    + ZONE_EVENTS
    + """),
spans AS (
    SELECT c.store, c.part, c.seq, coalesce(n.zone, 'UTC') AS zone,
           lead(c.part) OVER w AS next_part, lead(c.seq) OVER w AS next_seq
    FROM changes AS c
    LEFT JOIN unnest(%(names)s::text[], %(zones)s::text[]) AS n(name, zone) ON n.name = c.name
    WINDOW w AS (PARTITION BY c.store ORDER BY c.part, c.seq)
),
moves AS (
    SELECT m.store, m.sku, m.type, m.occurred_at, coalesce(s.zone, 'UTC') AS zone,
           CASE m.type WHEN 'stock.adjusted' THEN m.data->>'delta'
                       WHEN 'stock.counted' THEN m.data->>'counted'
                       ELSE m.data->>'quantity' END::numeric AS quantity
    FROM unnest(%(partitions)s::text[], %(lasts)s::bigint[]) AS b(partition, last)
    JOIN events AS m ON m.partition = b.partition AND m.seq <= b.last
    LEFT JOIN spans AS s ON s.store = m.store
        AND (m.partition COLLATE "C", m.seq) > (s.part, s.seq)
        AND (s.next_seq IS NULL OR (m.partition COLLATE "C", m.seq) < (s.next_part, s.next_seq))
    WHERE m.type = ANY(%(types)s) AND m.store IS NOT NULL AND m.sku IS NOT NULL
)
INSERT INTO {table} (store, day, sku, type, count, quantity)
SELECT store,
       CASE WHEN occurred_at > '0001-01-03Z' AND occurred_at < '9999-12-30Z'
                THEN (occurred_at AT TIME ZONE zone)::date
            WHEN occurred_at AT TIME ZONE zone < '0001-01-01' THEN '0001-01-01'::date
            WHEN occurred_at AT TIME ZONE zone >= '10000-01-01' THEN '9999-12-31'::date
            ELSE (occurred_at AT TIME ZONE zone)::date END,
       sku, type, count(*), sum(quantity)
FROM moves GROUP BY 1, 2, 3, 4
"""
)

# The zone each store has after its last zone event in fold order.
ZONES = (
    "INSERT INTO {table} (store, timezone) SELECT DISTINCT ON (store) store, name FROM ("
    + ZONE_EVENTS
    + ") AS changes ORDER BY store, part DESC, seq DESC"
)
ZONE_NAMES = """
SELECT DISTINCT data->>'timezone' FROM events
WHERE type IN ('store.opened', 'store.updated') AND data->>'timezone' IS NOT NULL
"""
PG_ZONES = "SELECT name FROM pg_timezone_names WHERE name = ANY(%s)"


class SetBuild(Protocol):
    """A read model a rebuild writes by SQL into its shadows."""

    decodes: frozenset[str]  # the types whose undecodable event stops it in a partition

    def usable(self, cur: Cursor) -> bool:
        """Whether SQL gives exactly the fold's rows on this copy (else: fold it)."""

    def build(self, cur: Cursor, bounds: Mapping[str, int]) -> None:
        """Write the rows of every partition's events up to its bound seq."""


def _bounds(bounds: Mapping[str, int]) -> dict[str, list[object]]:
    return {"partitions": list(bounds), "lasts": list(bounds.values())}


class HeadsBuild:
    """`stream_heads` by one `GROUP BY` (it decodes nothing: it never stops)."""

    decodes: frozenset[str] = frozenset()

    def usable(self, cur: Cursor) -> bool:
        """Always."""
        return True

    def build(self, cur: Cursor, bounds: Mapping[str, int]) -> None:
        """Every stream's head."""
        cur.execute(HEADS.format(table=shadow("stream_heads")), _bounds(bounds))


class MovementsBuild:
    """`daily_movements` and `daily_movement_zones` by `GROUP BY`s."""

    decodes = MOVEMENT_TYPES | ZONE_TYPES

    def __init__(self) -> None:
        self.zones: dict[str, str] = {}

    def usable(self, cur: Cursor) -> bool:
        """When PostgreSQL knows every zone name the domain knows among the stores'."""
        names = [row[0] for row in cur.execute(ZONE_NAMES).fetchall() if row[0] is not None]
        known = {name for name in names if is_known(name)}
        in_server = {row[0] for row in cur.execute(PG_ZONES, (sorted(known),)).fetchall()}
        if known - in_server:
            return False
        self.zones = {name: name if name in known else "UTC" for name in names}
        self.zones.setdefault("UTC", "UTC")
        return True

    def build(self, cur: Cursor, bounds: Mapping[str, int]) -> None:
        """Every day's totals, every store's zone."""
        arguments = {
            **_bounds(bounds),
            "names": list(self.zones),
            "zones": list(self.zones.values()),
            "types": sorted(MOVEMENT_TYPES),
        }
        cur.execute(MOVEMENTS.format(table=shadow("daily_movements")), arguments)
        cur.execute(ZONES.format(table=shadow("daily_movement_zones")), arguments)


def set_build(name: str) -> SetBuild | None:
    """The SQL build of the read model of projector `name`, if it has one."""
    if name == "stream_heads":
        return HeadsBuild()
    if name == "daily_movements":
        return MovementsBuild()
    return None
