"""`stream_heads`: each stream's latest version and the seq that set it.

Table: projections/0004_stream_heads.sql. This projector writes it; no query of the
service reads it today (the tests compare it with the events).
"""

from __future__ import annotations

from collections.abc import Sequence

from inventory.readmodels.projection import Builder, Cursor, Projector, ReplicaEvent, shadow

UPSERT = """
INSERT INTO stream_heads (stream, partition, version, last_seq)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (stream) DO UPDATE SET
    version = greatest(stream_heads.version, excluded.version),
    last_seq = greatest(stream_heads.last_seq, excluded.last_seq),
    updated_at = now()
"""


# Partitions are folded in Python's order of str, which is "C" collation's order.
MERGE = """
WITH split AS (
    DELETE FROM {table}
    WHERE stream IN (SELECT stream FROM {table} GROUP BY stream HAVING count(*) > 1)
    RETURNING stream, partition, version, last_seq
)
INSERT INTO {table} (stream, partition, version, last_seq)
SELECT stream, min(partition COLLATE "C"), max(version), max(last_seq) FROM split GROUP BY stream
"""


class StreamHeads(Projector):
    """One row per stream; a batch becomes one upsert of its streams' highest versions."""

    name = "stream_heads"
    tables = ("stream_heads",)

    def apply(self, cur: Cursor, events: Sequence[ReplicaEvent]) -> None:
        """Upsert the batch's highest version per stream; greatest() makes replays no-ops."""
        heads: dict[str, ReplicaEvent] = {}
        for event in events:
            current = heads.get(event.stream)
            if current is None or event.version > current.version:
                heads[event.stream] = event
        rows = list(heads.values())
        cur.execute(
            UPSERT,
            (
                [e.stream for e in rows],
                [e.partition for e in rows],
                [e.version for e in rows],
                [e.seq for e in rows],
            ),
        )

    def builder(self) -> Builder:
        """Every stream's head in memory, COPYed at the end."""
        return HeadsBuilder()

    def merge_folds(self, cur: Cursor) -> None:
        """A stream folded by two folds has a row from each: one row, as a single fold
        makes it (highest version and seq; the partition it met first, partitions being
        folded in name order)."""
        cur.execute(MERGE.format(table=shadow("stream_heads")))


class HeadsBuilder:
    """Each stream's partition, highest version and highest seq (versions follow seq)."""

    prefixes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.heads: dict[str, tuple[str, int, int]] = {}

    def feed(self, event: ReplicaEvent, decoded: object) -> None:
        """Keep the stream's highest version and seq, as the upsert's greatest() does."""
        current = self.heads.get(event.stream)
        if current is None:
            self.heads[event.stream] = (event.partition, event.version, event.seq)
        else:
            version, seq = max(current[1], event.version), max(current[2], event.seq)
            self.heads[event.stream] = (current[0], version, seq)

    def flush(self, cur: Cursor) -> None:
        """Nothing is final before the last event."""

    def finish(self, cur: Cursor) -> None:
        """One COPY of every head."""
        table = shadow("stream_heads")
        with cur.copy(f"COPY {table} (stream, partition, version, last_seq) FROM STDIN") as copy:
            for stream, (partition, version, seq) in self.heads.items():
                copy.write_row((stream, partition, version, seq))
