"""The settings for more than one box: read URLs over standbys, PgBouncer, Redis loss.

Parsed here and merged into `Settings` by `settings.py`, which turns ScaleSettingsError
into its ConfigurationError (this module cannot import it: settings imports this one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from inventory.runtime import redis_clients

TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}


class ScaleSettingsError(ValueError):
    """One of this module's variables names something the service cannot use."""


def check_libpq_url(name: str, value: str) -> str:
    """`value` if libpq accepts it as a connection string (one host or several:
    `postgresql://u:p@h1:5432,h2:5432/db?load_balance_hosts=random`), else an error
    that shows no password."""
    try:
        params = conninfo_to_dict(value)
    except psycopg.ProgrammingError:
        raise ScaleSettingsError(
            f"{name} must be a libpq URL like postgresql://user:password@host1:port1"
            ",host2:port2/dbname (libpq refused it)"
        ) from None
    hosts = str(params.get("host") or params.get("hostaddr") or "").split(",")
    ports = str(params.get("port") or "").split(",")
    if not all(hosts):
        raise ScaleSettingsError(f"{name} names no host (or an empty one in its host list)")
    if any(port and not (port.isdigit() and 0 < int(port) < 65536) for port in ports):
        raise ScaleSettingsError(f"{name} has a bad port: {','.join(ports)!r}")
    if len(ports) > 1 and len(ports) != len(hosts):
        raise ScaleSettingsError(f"{name} lists {len(hosts)} hosts but {len(ports)} ports")
    return value


def check_redis_url(value: str) -> str:
    """INVENTORY_REDIS_URL if usable: `redis://`, `rediss://`, `unix://` or Sentinel's."""
    try:
        return redis_clients.check_url(value)
    except redis_clients.RedisUrlError as error:
        raise ScaleSettingsError(
            f"INVENTORY_REDIS_URL must be a URL like redis://:password@host:port/0 or "
            f"{redis_clients.FORM}: {error}"
        ) from None


def flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no variable: 1/true/yes/on or 0/false/no/off (unset: no)."""
    raw = (env.get(name) or "").strip().lower()
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise ScaleSettingsError(f"{name} must be 1 or 0 (true/false, yes/no), got {raw!r}")


def _fail_open(env: Mapping[str, str]) -> bool:
    name = "INVENTORY_RATE_LIMIT_WITHOUT_REDIS"
    raw = (env.get(name) or "open").strip().lower()
    if raw not in {"open", "closed"}:
        raise ScaleSettingsError(f"{name} must be open or closed, got {raw!r}")
    return raw == "open"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ScaleSettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ScaleSettingsError(f"{name} must be more than 0 seconds, got {raw!r}")
    return value


def scale_from_env(env: Mapping[str, str], primary_url: str, replica_url: str) -> dict[str, Any]:
    """The read URL (default: the replica), the direct primary URL (default: the primary),
    PgBouncer mode, the limiter's policy without Redis and the standby lag allowance."""
    read = env.get("INVENTORY_READ_URL") or replica_url
    direct = env.get("INVENTORY_PRIMARY_DIRECT_URL") or primary_url
    return {
        "read_url": check_libpq_url("INVENTORY_READ_URL", read),
        "primary_direct_url": check_libpq_url("INVENTORY_PRIMARY_DIRECT_URL", direct),
        "pgbouncer": flag(env, "INVENTORY_PGBOUNCER"),
        "rate_limit_fail_open": _fail_open(env),
        "max_standby_lag_seconds": _seconds(env, "INVENTORY_MAX_STANDBY_LAG_SECONDS", 30.0),
    }
