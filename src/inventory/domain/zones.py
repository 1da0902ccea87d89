"""Store time zones: IANA names checked when a store opens, and the zone a name means."""

from __future__ import annotations

from datetime import UTC, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

# Names the tz database ships that do not name a place: the machine's own zone and
# placeholders. A store's business day must not depend on the server it runs on.
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@cache
def known_timezones() -> frozenset[str]:
    """Every IANA zone name a store may have (read once from the tz database)."""
    return frozenset(available_timezones()) - NOT_PLACES


def is_known(name: str) -> bool:
    """Whether `name` is an IANA time zone such as "Europe/Paris" or "UTC"."""
    return name in known_timezones()


@cache
def zone(name: str | None) -> tzinfo:
    """The zone called `name`; UTC for None or a name this machine does not know (a store
    opened before names were checked, or a zone newer than this machine's tz database)."""
    if name is None or name == "UTC" or not is_known(name):
        return UTC  # datetime's own UTC: a quarter of ZoneInfo("UTC")'s conversion cost
    return ZoneInfo(name)
