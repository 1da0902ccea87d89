"""A dated stock change's history (domain/availability.py), as statements on `events`."""

from __future__ import annotations

from inventory.domain.availability import HistoryNeed
from inventory.eventstore.script import Statement

# The events from the latest count at or before the change's time (all without one), or
# those dated after it, in business-time order.
FROM_COUNT = """
SELECT type, data::text FROM events
WHERE stream = %s AND occurred_at >= COALESCE((
    SELECT max(occurred_at) FROM events
    WHERE stream = %s AND type = 'stock.counted' AND occurred_at <= %s), '-infinity')
ORDER BY occurred_at, version"""
AFTER = (
    "SELECT type, data::text FROM events WHERE stream = %s AND occurred_at > %s"
    " ORDER BY occurred_at, version"
)


def statement(need: HistoryNeed) -> Statement:
    """The statement reading the events `need` names."""
    if need.from_count:
        return (FROM_COUNT, (need.stream, need.stream, need.at))
    return (AFTER, (need.stream, need.at))
