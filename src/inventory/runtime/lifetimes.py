"""The lifetimes settings: how long tokens, sessions, reports and stalled imports live, how
often the sweep runs, and `whole` for every whole-number variable; merged by settings.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class LifetimeSettingsError(ValueError):
    """A whole-number variable the service cannot use (settings.py re-raises it as its
    ConfigurationError: this module cannot import it, settings imports this one)."""


def whole(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole-number variable from 0 to 2^31 - 1, `default` when unset or empty."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LifetimeSettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not 0 <= value < 2**31:  # 10^999 would crash float() or a timedelta later, not here
        raise LifetimeSettingsError(f"{name} must be from 0 to {2**31 - 1}, got {raw[:24]!r}")
    return value


def lifetimes_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The sweep's interval, a report's and an import's retention, an import's stall
    allowance, an access token's lifetime and a session's (each at least 1 where 0 would
    mean "never"; a session lasts at least one token)."""
    token = max(1, whole(env, "INVENTORY_JWT_TTL_SECONDS", 900))
    return {
        "sweep_interval_seconds": float(whole(env, "INVENTORY_SWEEP_INTERVAL_SECONDS", 5)),
        "report_retention_days": max(1, whole(env, "INVENTORY_REPORT_RETENTION_DAYS", 30)),
        "import_stall_seconds": float(max(1, whole(env, "INVENTORY_IMPORT_STALL_SECONDS", 60))),
        "import_retention_days": max(1, whole(env, "INVENTORY_IMPORT_RETENTION_DAYS", 30)),
        "jwt_ttl_seconds": token,
        "session_max_seconds": max(token, whole(env, "INVENTORY_SESSION_MAX_SECONDS", 43_200)),
    }
