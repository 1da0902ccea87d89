"""`refreshed_token`: a refresh keeps its session's sign-in time, never outlives the
session, and is refused once the session has lasted its maximum."""

from __future__ import annotations

import pytest

from inventory.runtime.settings import Settings
from inventory.security.errors import Unauthorized
from inventory.security.tokens import issue_token, refreshed_token, verify_token

SECRET = "s" * 32
SERVERS = {
    "INVENTORY_PRIMARY_URL": "postgresql://u:p@db1:5432/inventory",
    "INVENTORY_REPLICA_URL": "postgresql://u:p@db2:5432/inventory",
    "INVENTORY_REDIS_URL": "redis://127.0.0.1:6379/0",
}


def refresh(started: int, now: int) -> tuple[str, int]:
    return refreshed_token(
        SECRET,
        "user",
        generation=3,
        session_started=started,
        ttl_seconds=900,
        session_max_seconds=3600,
        now=now,
    )


def test_a_refresh_keeps_the_sign_in_time_and_ends_with_the_session() -> None:
    early, early_ttl = refresh(1000, 1100)
    late, late_ttl = refresh(1000, 4500)

    assert early_ttl == 900
    assert verify_token(SECRET, early, now=1100).session_started == 1000
    assert late_ttl == 100
    assert verify_token(SECRET, late, now=4500).expires_at == 4600
    assert verify_token(SECRET, late, now=4500).generation == 3


@pytest.mark.parametrize("now", [4600, 4601, 10**9])
def test_a_refresh_at_or_past_the_sessions_end_is_refused(now: int) -> None:
    with pytest.raises(Unauthorized, match="maximum length"):
        refresh(1000, now)


def test_a_token_without_a_sign_in_time_counts_from_its_issue() -> None:
    token = issue_token(SECRET, "user", 60, now=500)

    assert verify_token(SECRET, token, now=501).session_started == 500


def test_a_session_lasts_twelve_hours_and_at_least_one_token() -> None:
    assert Settings.from_env(SERVERS).session_max_seconds == 43_200
    short = {**SERVERS, "INVENTORY_JWT_TTL_SECONDS": "600", "INVENTORY_SESSION_MAX_SECONDS": "5"}
    assert Settings.from_env(short).session_max_seconds == 600
