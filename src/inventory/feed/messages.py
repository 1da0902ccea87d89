"""The feed's messages, shared by the worker (which publishes live messages) and the API
(which reads the backlog and fills gaps); the replica queries behind them are
readmodels/feed_publication.py's.

An event message carries the item's level *after* that event, read from the stock
ledger by `seq`, and `prev_seq`: the seq of the partition's previous event, so a client
(or the API) can tell a missing message from the gaps of a global cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import msgspec

from inventory.readmodels.feed_publication import EventRow

_encoder = msgspec.json.Encoder()


def quantity(value: Decimal | None) -> int | str | None:
    """A quantity as the API shows it: an integer when whole, else an exact string."""
    if value is None:
        return None
    if value == value.to_integral_value():
        return int(value)
    return str(value.normalize())


def event_message(row: EventRow, level: tuple[Any, ...] | None) -> dict[str, Any]:
    """The `{"kind": "event", ...}` message for `row`, with the level after it (or null)."""
    return {
        "kind": "event",
        "seq": row.seq,
        "position": row.position,
        "stream": row.stream,
        "type": row.type,
        "store": row.store,
        "sku": row.sku,
        "occurred_at": row.occurred_at,
        "data": msgspec.Raw(row.data.encode()),
        "level": None
        if level is None
        else {
            "on_hand": quantity(level[0]),
            "reserved": quantity(level[1]),
            "available": quantity(level[2]),
        },
        "prev_seq": row.prev_seq,
    }


def alert_messages(rows: Iterable[tuple[Any, ...]]) -> dict[int, list[dict[str, Any]]]:
    """Alert messages by the seq that opened or closed them. At its opening seq an alert
    shows as open even when a later event in the same range closed it."""
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        alert_id, store, sku, kind, opened_seq, opened_at, closed_seq, closed_at, details = row
        alert = {
            "id": alert_id,
            "store": store,
            "sku": sku,
            "kind": kind,
            "opened_seq": opened_seq,
            "opened_at": opened_at,
            "closed_seq": None,
            "closed_at": None,
            "details": msgspec.Raw(details.encode()),
        }
        found.setdefault(opened_seq, []).append(
            {"kind": "alert", "seq": opened_seq, "alert": alert}
        )
        if closed_seq is not None:
            closed = {**alert, "closed_seq": closed_seq, "closed_at": closed_at}
            found.setdefault(closed_seq, []).append(
                {"kind": "alert", "seq": closed_seq, "alert": closed}
            )
    return found


class Bundle(msgspec.Struct, frozen=True):
    """What goes over Redis for one event: the event message and the alerts it moved."""

    store: str
    seq: int
    prev_seq: int
    event: msgspec.Raw
    alerts: list[msgspec.Raw] = []


def bundles(
    rows: Sequence[EventRow],
    levels: dict[int, tuple[Any, ...]],
    alerts: dict[int, list[dict[str, Any]]],
) -> list[Bundle]:
    """One bundle per event row, its messages encoded once."""
    return [
        Bundle(
            store=row.store,
            seq=row.seq,
            prev_seq=row.prev_seq,
            event=msgspec.Raw(_encoder.encode(event_message(row, levels.get(row.seq)))),
            alerts=[msgspec.Raw(_encoder.encode(a)) for a in alerts.get(row.seq, [])],
        )
        for row in rows
    ]


def encode(value: Any) -> bytes:
    """JSON bytes (datetimes RFC 3339, Raw spliced in as is)."""
    return _encoder.encode(value)


BUNDLE_DECODER = msgspec.json.Decoder(Bundle)


def channel(namespace: str, store: str) -> str:
    """The Redis channel of one store's live messages."""
    return f"{namespace}:feed:{store}"


def channel_pattern(namespace: str) -> str:
    """The pattern every store's channel matches (one subscription per API process)."""
    return f"{namespace}:feed:*"
