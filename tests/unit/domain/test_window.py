"""The business-time window (domain/window.py): its bounds, and every time it admits dates
in every tzdata zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.domain.window import (
    EARLIEST,
    FUTURE_TOLERANCE,
    REPRESENTABLE,
    business_window,
    local_date,
    representable_problem,
)
from inventory.domain.zones import known_timezones, zone


def naive(at: datetime) -> datetime:
    """Hypothesis bounds aware datetimes by their wall-clock time."""
    return at.replace(tzinfo=None)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ZONES = sorted(known_timezones())
# Every whole-minute offset a client may send, from -23:59 to +23:59.
OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
# Any "now" this service will see: the window's own floor up to the next century.
NOWS = st.datetimes(
    naive(datetime(2000, 1, 2, tzinfo=UTC)),
    naive(datetime(2100, 1, 1, tzinfo=UTC)),
    timezones=st.just(UTC),
)


def test_the_window_reaches_from_2000_to_five_minutes_after_now() -> None:
    window = business_window(NOW)
    assert window.earliest == datetime(2000, 1, 1, tzinfo=UTC)
    assert window.latest == NOW + timedelta(minutes=5)
    assert window.admits(EARLIEST)
    assert not window.admits(EARLIEST - timedelta(seconds=1))
    assert window.admits(NOW + FUTURE_TOLERANCE)
    assert not window.admits(NOW + FUTURE_TOLERANCE + timedelta(microseconds=1))


def test_backdate_days_move_the_start_but_never_before_2000() -> None:
    assert business_window(NOW, 30).earliest == NOW - timedelta(days=30)
    assert business_window(NOW, 0).earliest == NOW
    assert business_window(NOW, 36500).earliest == EARLIEST


def test_year_one_in_any_offset_compares_without_overflowing() -> None:
    window = business_window(NOW)
    for offset in (timedelta(hours=14), timedelta(hours=-12), timedelta(0)):
        year_one = datetime(1, 1, 1, 5, 0, tzinfo=timezone(offset))
        assert not window.admits(year_one)
        year_max = datetime(9999, 12, 31, 23, 59, tzinfo=timezone(offset))
        assert not window.admits(year_max)


def test_the_problem_names_the_field_and_both_ends_of_the_window() -> None:
    problem = business_window(NOW, 30).problem()
    assert problem["field"] == "occurred_at"
    assert problem["earliest"] == (NOW - timedelta(days=30)).isoformat()
    assert problem["latest"] == (NOW + timedelta(minutes=5)).isoformat()
    assert "between" in problem["message"]


def test_query_times_outside_the_calendar_are_problems_and_inside_are_not() -> None:
    year_one = datetime(1, 1, 1, 5, tzinfo=timezone(timedelta(hours=14)))
    year_max = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12)))
    assert representable_problem(year_one, "as_of") == REPRESENTABLE.problem("as_of")
    assert representable_problem(year_max, "known_at") == REPRESENTABLE.problem("known_at")
    assert representable_problem(datetime(1999, 1, 1), "to") is None  # noqa: DTZ001 - naive on purpose
    assert representable_problem(NOW, "from") is None


def test_an_event_stored_before_the_window_dates_on_the_calendars_ends() -> None:
    # New York's local mean time (-4:56) puts year 1 at midnight UTC in year 0.
    year_one = datetime(1, 1, 1, tzinfo=UTC)
    assert local_date(year_one, ZoneInfo("America/New_York")) == date.min
    year_max = datetime(9999, 12, 31, 23, tzinfo=UTC)
    assert local_date(year_max, ZoneInfo("Pacific/Kiritimati")) == date.max


@pytest.mark.parametrize(
    "name", ["Pacific/Kiritimati", "Etc/GMT+12", "Asia/Kathmandu", "America/St_Johns"]
)
def test_the_window_start_dates_in_the_extreme_zones(name: str) -> None:
    expected = EARLIEST.astimezone(ZoneInfo(name)).date()
    assert local_date(EARLIEST, zone(name)) == expected
    assert expected in (date(1999, 12, 31), date(2000, 1, 1))


@settings(max_examples=150, deadline=None)
@given(now=NOWS, before=st.timedeltas(timedelta(0), timedelta(days=40000)), offset=OFFSETS)
def test_every_time_the_window_admits_has_a_local_date_in_every_zone(
    now: datetime, before: timedelta, offset: timezone
) -> None:
    window = business_window(now)
    at = max(window.latest - before, window.earliest).astimezone(offset)
    assert window.admits(at)
    for name in ZONES:
        tz = zone(name)
        assert local_date(at, tz) == at.astimezone(tz).date()


@settings(max_examples=100, deadline=None)
@given(
    at=st.datetimes(
        naive(REPRESENTABLE.earliest), naive(REPRESENTABLE.latest), timezones=st.just(UTC)
    ),
    offset=OFFSETS,
)
def test_every_representable_query_time_has_a_local_date_in_every_zone(
    at: datetime, offset: timezone
) -> None:
    local = at.astimezone(offset)
    assert representable_problem(local, "as_of") is None
    for name in ZONES:
        at.astimezone(zone(name)).date()  # raises OverflowError if it cannot
