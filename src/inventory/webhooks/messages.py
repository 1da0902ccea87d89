"""What a subscription receives: its events and the alerts they opened, as messages in
(seq, part) order, each with a message id derived from the subscription and its place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

ALERT_OPENED = "alert.opened"
TEST = "webhook.test"

_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a subscription's stream: part 0 is the event at `seq`, parts 1.. the
    alerts that event opened, in (store, sku, kind) order."""

    webhook_id: str
    seq: int
    part: int
    type: str
    body: str


def message_id(subscription_id: str, seq: int, part: int) -> str:
    """The `webhook-id` of a stream message: the same on every attempt and every round."""
    base = f"msg_{subscription_id.replace('-', '')}_{seq}"
    return base if part == 0 else f"{base}_{part}"


def body(kind: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON body `{"type", "timestamp", "data"}`."""
    return _encoder.encode({"type": kind, "timestamp": timestamp, "data": data}).decode()


def test_body(subscription_id: str) -> str:
    """The body of a `webhook.test` delivery."""
    return body(TEST, datetime.now(UTC), {"webhook_id": subscription_id})


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, position, stream, version, type_, store, sku, occurred, recorded, data, meta = row
    return {
        "seq": seq,
        "position": position,
        "stream": stream,
        "version": version,
        "type": type_,
        "store": store,
        "sku": sku,
        "occurred_at": occurred,
        "recorded_at": recorded,
        "data": data,
        "metadata": meta,
    }


def _alert(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, id_, store, sku, kind, opened_at, details = row
    return {
        "id": id_,
        "store": store,
        "sku": sku,
        "kind": kind,
        "opened_seq": seq,
        "opened_at": opened_at,
        "details": details,
    }


def stream(
    subscription_id: str,
    events: list[tuple[Any, ...]],
    alerts: list[tuple[Any, ...]],
    types: list[str] | None,
) -> list[Message]:
    """The messages of `events` (rows as readmodels.webhook_source gives them) and of the
    alerts they opened, in order, keeping only the subscribed `types` (None: all)."""
    by_seq: dict[int, list[tuple[Any, ...]]] = {}
    for alert in alerts:
        by_seq.setdefault(alert[0], []).append(alert)
    wanted = (lambda _: True) if types is None else set(types).__contains__
    messages = []
    for row in events:
        seq, recorded = row[0], row[8]
        if wanted(row[4]):
            payload = body(row[4], recorded, _event(row))
            messages.append(Message(message_id(subscription_id, seq, 0), seq, 0, row[4], payload))
        if not wanted(ALERT_OPENED):
            continue
        for part, alert in enumerate(by_seq.get(seq, []), start=1):
            payload = body(ALERT_OPENED, recorded, _alert(alert))
            messages.append(
                Message(message_id(subscription_id, seq, part), seq, part, ALERT_OPENED, payload)
            )
    return messages
