"""`stream_heads`: each stream's latest version and the seq that set it."""

from __future__ import annotations

from collections.abc import Sequence

from inventory.projectors.engine import Cursor, Projector, ReplicaEvent

UPSERT = """
INSERT INTO stream_heads (stream, partition, version, last_seq)
SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
ON CONFLICT (stream) DO UPDATE SET
    version = greatest(stream_heads.version, excluded.version),
    last_seq = greatest(stream_heads.last_seq, excluded.last_seq),
    updated_at = now()
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
