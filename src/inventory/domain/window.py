"""The business-time window (api.md, product.md rule 2): one definition for the API's
schemas, the domain's admission and the projectors' local days.

An `occurred_at` lies on or after 2000-01-01T00:00Z, at most five minutes after now, and,
for senders limited to backdating (clerks, API keys), no more than the store's
`backdate_days` before now. Every instant in that window has a local date in every tzdata
zone (no offset reaches a day), so everything the API accepts projects. The period close
is checked apart (409 `period_closed`). Times that only select (query parameters) or that
end up in SQL (`expires_at`) are bounded to what Python and Postgres represent in every zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_BACKDATE_DAYS = 30
MAX_BACKDATE_DAYS = 36500  # a century: with the 2000 floor, any larger value changes nothing
# An instant at least a day inside Python's calendar converts into every zone (no offset
# reaches a day), and Postgres represents it too.
REPRESENTABLE_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
REPRESENTABLE_LATEST = datetime(9999, 12, 30, tzinfo=UTC)


WINDOW_TEXT = (
    "The business time (RFC 3339 with an offset; default now): on or after "
    "2000-01-01T00:00Z, at most 5 minutes after now, after the store's period close, and for "
    "clerks and API keys no more than the store's `backdate_days` before now (422 "
    "`occurred_at_out_of_range` otherwise, with the window in `errors`)."
)
EXPIRY_TEXT = "In the future, before 9999-12-30T00:00Z."
UNTIL_TEXT = "Not in the future, on or after 2000-01-01T00:00Z, not before the current close."


class Window(NamedTuple):
    """The business times a command may carry: `earliest` and `latest` both included."""

    earliest: datetime
    latest: datetime

    def admits(self, at: datetime) -> bool:
        """Whether the aware datetime `at` lies in the window (compared without conversion,
        so a year-1 time in any offset compares without overflowing)."""
        return self.earliest <= at <= self.latest

    def problem(self, field: str = "occurred_at") -> dict[str, Any]:
        """The `errors` entry that tells the client the window it missed."""
        earliest, latest = self.earliest.isoformat(), self.latest.isoformat()
        return {
            "field": field,
            "earliest": earliest,
            "latest": latest,
            "message": f"must lie between {earliest} and {latest}",
        }


def business_window(now: datetime, backdate_days: int | None = None) -> Window:
    """The window at `now`; `backdate_days` (None: unlimited) bounds how far back it reaches."""
    earliest = EARLIEST
    if backdate_days is not None:
        earliest = max(EARLIEST, now - timedelta(days=backdate_days))
    return Window(earliest, now + FUTURE_TOLERANCE)


REPRESENTABLE = Window(REPRESENTABLE_EARLIEST, REPRESENTABLE_LATEST)
"""The window of times that only select or schedule (queries, `expires_at`)."""


def representable_problem(at: datetime, field: str) -> dict[str, Any] | None:
    """The `errors` entry when `at` lies outside REPRESENTABLE (a time without an offset
    is taken as UTC: the bounds keep a day's margin for any reading of it)."""
    aware = at if at.utcoffset() is not None else at.replace(tzinfo=UTC)
    return None if REPRESENTABLE.admits(aware) else REPRESENTABLE.problem(field)


def local_date(at: datetime, zone: tzinfo) -> date:
    """The day `at` falls on in `zone`.

    Exact for every time the window admits. An event stored before the window was enforced
    may lie where the zone's date is not representable; it counts on the calendar's first
    or last day rather than stopping the store's projections forever.
    """
    try:
        return at.astimezone(zone).date()
    except OverflowError:
        return date.min if at < EARLIEST else date.max
