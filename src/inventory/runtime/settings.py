"""Settings: one frozen object built once from the `INVENTORY_*` environment."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import msgspec

from inventory.runtime.lifetimes import LifetimeSettingsError, lifetimes_from_env
from inventory.runtime.lifetimes import whole as _int
from inventory.runtime.listen_host import ListenHostError, check_listen_host
from inventory.runtime.scale_settings import (
    ScaleSettingsError,
    check_libpq_url,
    check_redis_url,
    scale_from_env,
)
from inventory.security.ratelimit import DEFAULT_BUDGETS, Budget


class ConfigurationError(Exception):
    """The environment names something the service cannot use."""


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigurationError(
            f"{name} must be a URL like {schemes[0]}://user:password@host:port/..., "
            f"got {redact(value)!r}"
        )
    try:
        _ = parts.port
    except ValueError as error:
        raise ConfigurationError(f"{name} has a bad port: {redact(value)!r}") from error
    return value


def _check_postgres(name: str, value: str) -> str:
    """A libpq connection string, URL or key=value, that may list several hosts
    (`h1:5432,h2:5432`): a typo fails at start-up rather than at the first failover."""
    try:
        return check_libpq_url(name, value)
    except ScaleSettingsError as error:
        raise ConfigurationError(f"{error}, got {redact(value)!r}") from None


def redact(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("INVENTORY_HOME") or Path.cwd() / ".inventory").resolve()


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the servers are and how the service behaves; see the README for each variable."""

    primary_url: str
    replica_url: str
    redis_url: str
    primary_admin_url: str
    replica_admin_url: str
    subscription_conninfo: str
    home: Path
    jwt_secret: str | None = None
    pool_min_size: int = 2
    pool_max_size: int = 20
    max_replication_lag_bytes: int = 256 * 1024 * 1024
    max_projection_lag_events: int = 10_000
    max_projection_lag_seconds: float = 60.0
    redis_namespace: str = "inventory"
    sweep_interval_seconds: float = 5.0
    report_retention_days: int = 30
    import_stall_seconds: float = 60.0
    import_retention_days: int = 30
    jwt_ttl_seconds: int = 900
    session_max_seconds: int = 43_200  # a signed-in session's refreshes end 12 h after login
    feed_heartbeat_seconds: float = 10.0
    feed_queue_size: int = 1000
    trusted_proxies: tuple[str, ...] = ()
    budgets: dict[str, Budget] = msgspec.field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    # Observability (docs/observability.md): where a worker serves its metrics (port 0: off).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9310
    # More than one box (docs/scaling.md): queries and the feed on `read_url` (standbys of
    # the replica), session-bound work on `primary_direct_url` (around PgBouncer); from_env
    # fills both, "" means the replica's and the primary's own URL.
    read_url: str = ""
    primary_direct_url: str = ""
    pgbouncer: bool = False
    rate_limit_fail_open: bool = True
    max_standby_lag_seconds: float = 30.0
    # Audit (docs/audit.md): the secret that signs chain checkpoints, and where they go.
    audit_signing_key: str | None = None
    audit_checkpoint_dir: Path | None = None
    # Webhooks (docs/webhooks.md): networks a webhook may target despite the SSRF guard.
    webhook_allowed_networks: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Build the settings from the environment, or raise ConfigurationError."""
        env = os.environ if env is None else env
        servers = _servers(env)
        try:
            return cls(
                **servers,
                **_tuning(env),
                **_observability(env),
                **_scale(env, servers),
                **_audit(env),
                **lifetimes_from_env(env),
                home=_home(env),
            )
        except (ScaleSettingsError, LifetimeSettingsError) as error:
            raise ConfigurationError(str(error)) from None

    @property
    def checkpoint_directory(self) -> Path:
        """Where chain checkpoints go: the setting, or `audit-checkpoints` in the home."""
        return self.audit_checkpoint_dir or self.home / "audit-checkpoints"


class MigrationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What `inventory migrate` needs: the two databases as their admins; no Redis."""

    primary_admin_url: str
    replica_admin_url: str
    subscription_conninfo: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """The admin URLs (each defaulting to the app's URL), or raise ConfigurationError."""
        return cls(**_databases(os.environ if env is None else env))


def _databases(env: Mapping[str, str]) -> dict[str, str]:
    """The admin URLs, checked and defaulting to the app's, and the subscription's conninfo."""
    urls = {}
    for side in ("PRIMARY", "REPLICA"):
        admin, app = f"INVENTORY_{side}_ADMIN_URL", f"INVENTORY_{side}_URL"
        value = env.get(admin) or env.get(app)
        if not value:
            raise ConfigurationError(
                f"{admin} (or {app}) not set (run `inventory dev`, or source "
                "$INVENTORY_HOME/dev.env, or export the server URLs)"
            )
        urls[side] = _check_postgres(admin if env.get(admin) else app, value)
    # A libpq connection string in either form (URL or key=value), passed on unparsed.
    conninfo = env.get("INVENTORY_SUBSCRIPTION_CONNINFO") or urls["PRIMARY"]
    _check_postgres("INVENTORY_SUBSCRIPTION_CONNINFO", conninfo)
    return {
        "primary_admin_url": urls["PRIMARY"],
        "replica_admin_url": urls["REPLICA"],
        "subscription_conninfo": conninfo,
    }


def _servers(env: Mapping[str, str]) -> dict[str, Any]:
    """Where the servers are: URLs checked, admin URLs defaulting to the app's."""
    missing = [
        name
        for name in ("INVENTORY_PRIMARY_URL", "INVENTORY_REPLICA_URL", "INVENTORY_REDIS_URL")
        if not env.get(name)
    ]
    if missing:
        raise ConfigurationError(
            f"{', '.join(missing)} not set (run `inventory dev`, or source "
            "$INVENTORY_HOME/dev.env, or export the server URLs)"
        )
    return {
        "primary_url": _check_postgres("INVENTORY_PRIMARY_URL", env["INVENTORY_PRIMARY_URL"]),
        "replica_url": _check_postgres("INVENTORY_REPLICA_URL", env["INVENTORY_REPLICA_URL"]),
        "redis_url": env["INVENTORY_REDIS_URL"],  # checked in _scale: Sentinel URLs too
        **_databases(env),
    }


def _scale(env: Mapping[str, str], servers: dict[str, Any]) -> dict[str, Any]:
    """Read URLs, PgBouncer and the Redis-loss policy (runtime/scale_settings.py)."""
    check_redis_url(servers["redis_url"])
    return scale_from_env(env, servers["primary_url"], servers["replica_url"])


def _tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """How the service behaves: pools, lags, secrets, the feed, proxies and budgets."""
    heartbeat = _int(env, "INVENTORY_FEED_HEARTBEAT_SECONDS", 10)
    return {
        "jwt_secret": env.get("INVENTORY_JWT_SECRET") or None,
        "pool_min_size": _int(env, "INVENTORY_POOL_MIN_SIZE", 2),
        "pool_max_size": _int(env, "INVENTORY_POOL_MAX_SIZE", 20),
        "max_replication_lag_bytes": _int(
            env, "INVENTORY_MAX_REPLICATION_LAG_BYTES", 256 * 1024 * 1024
        ),
        "max_projection_lag_events": _int(env, "INVENTORY_MAX_PROJECTION_LAG_EVENTS", 10_000),
        "max_projection_lag_seconds": float(_int(env, "INVENTORY_MAX_PROJECTION_LAG_SECONDS", 60)),
        "redis_namespace": env.get("INVENTORY_REDIS_NAMESPACE") or "inventory",
        "feed_heartbeat_seconds": float(min(15, max(1, heartbeat))),
        "feed_queue_size": max(1, _int(env, "INVENTORY_FEED_QUEUE_SIZE", 1000)),
        "trusted_proxies": _networks(env.get("INVENTORY_TRUSTED_PROXIES", "")),
        "webhook_allowed_networks": _networks(
            env.get("INVENTORY_WEBHOOK_ALLOWED_NETWORKS", ""), "INVENTORY_WEBHOOK_ALLOWED_NETWORKS"
        ),
        "budgets": {
            name: _budget(env, f"INVENTORY_RATE_LIMIT_{name.upper()}", default)
            for name, default in DEFAULT_BUDGETS.items()
        },
    }


def _observability(env: Mapping[str, str]) -> dict[str, Any]:
    """Where the worker serves its metrics: loopback by default, one port per process."""
    port = _int(env, "INVENTORY_WORKER_METRICS_PORT", 9310)
    if port > 65535:
        raise ConfigurationError(f"INVENTORY_WORKER_METRICS_PORT must be 0 to 65535, got {port}")
    return {
        "worker_metrics_host": _listen_host(env, "INVENTORY_WORKER_METRICS_HOST", "127.0.0.1"),
        "worker_metrics_port": port,
    }


def _audit(env: Mapping[str, str]) -> dict[str, Any]:
    """The checkpoint signing secret (none: checkpoints off) and the checkpoints' folder."""
    key = env.get("INVENTORY_AUDIT_SIGNING_KEY") or None
    if key is not None and len(key) < 32:
        raise ConfigurationError("INVENTORY_AUDIT_SIGNING_KEY must be at least 32 characters")
    folder = env.get("INVENTORY_AUDIT_CHECKPOINT_DIR")
    return {
        "audit_signing_key": key,
        "audit_checkpoint_dir": Path(folder).resolve() if folder else None,
    }


def _listen_host(env: Mapping[str, str], name: str, default: str) -> str:
    try:
        return check_listen_host(name, (env.get(name) or "").strip() or default)
    except ListenHostError as error:
        raise ConfigurationError(str(error)) from None


def _networks(spec: str, name: str = "INVENTORY_TRUSTED_PROXIES") -> tuple[str, ...]:
    networks = []
    for part in spec.split(","):
        if not part.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise ConfigurationError(
                f"{name} must list addresses or CIDRs, got {part.strip()!r}"
            ) from None
    return tuple(networks)


def _budget(env: Mapping[str, str], name: str, default: Budget) -> Budget:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    limit, _, window = raw.partition("/")
    try:
        budget = Budget(int(limit), int(window.removesuffix("s") or "60"))
    except ValueError:
        raise ConfigurationError(
            f"{name} must read LIMIT/SECONDS like 600/60, got {raw!r}"
        ) from None
    if budget.limit < 1 or budget.window_seconds < 1:
        raise ConfigurationError(f"{name} needs a limit and a window of at least 1, got {raw!r}")
    return budget


def home_from_env(env: Mapping[str, str] | None = None) -> Path:
    """The folder that holds the embedded servers' data: `$INVENTORY_HOME` or `./.inventory`."""
    return _home(os.environ if env is None else env)
