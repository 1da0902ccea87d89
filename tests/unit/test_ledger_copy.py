"""The ledger's text COPY writes its timestamps itself (`stock_ledger.copy_time`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inventory.readmodels.ledger import copy_time

AT = datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        AT,
        AT.replace(microsecond=0),
        AT.replace(tzinfo=timezone(timedelta(hours=5, minutes=30))),
        AT.replace(tzinfo=timezone(timedelta(hours=-3))),
        AT.replace(tzinfo=None),  # naive: read in the session's time zone, as psycopg's is
    ],
)
def test_a_timestamp_is_written_as_the_same_instant(value: datetime) -> None:
    written = copy_time(value)

    assert isinstance(written, str)
    assert datetime.fromisoformat(written) == value
    assert (datetime.fromisoformat(written).tzinfo is None) == (value.tzinfo is None)


def test_an_offset_with_seconds_is_left_to_psycopg() -> None:
    # msgspec writes offsets to the minute: +00:09:21 would move the instant by 21 s.
    value = AT.replace(tzinfo=timezone(timedelta(minutes=9, seconds=21)))

    assert copy_time(value) is value
