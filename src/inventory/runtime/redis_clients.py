"""Redis clients from one URL: a plain `redis://` server or a master found by Sentinel.

redis-py refuses `redis+sentinel://` URLs, so they are parsed here into
`Sentinel(...).master_for(NAME)`: such a client asks the sentinels for the current master
on every reconnect, so a failover costs the calls made while no master is known (they
fail, and every caller here already treats a failed Redis call as "Redis is away").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
PLAIN_SCHEMES = ("redis", "rediss", "unix")
FORM = "redis+sentinel://[:password@]host:port[,host:port...]/NAME[/db]"


class RedisUrlError(ValueError):
    """A Redis URL this service cannot use (the message never shows the password)."""


@dataclass(frozen=True)
class SentinelTarget:
    """Where the sentinels are, which master they watch, and how to log in to it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None  # the sentinels' own `requirepass`, if any


def parse_sentinel(url: str) -> SentinelTarget:
    """The parts of a `redis+sentinel://` URL, or RedisUrlError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise RedisUrlError(f"not a {SENTINEL_SCHEME}:// URL")
    # urlsplit cannot read a host list: split the netloc by hand.
    credentials, _, hosts = parts.netloc.rpartition("@")
    user, _, password = credentials.partition(":")
    sentinels = tuple(_host_port(item) for item in hosts.split(","))
    path = [segment for segment in parts.path.split("/") if segment]
    if not path or len(path) > 2:
        raise RedisUrlError(f"the path must be /NAME or /NAME/DB, as in {FORM}")
    db = path[1] if len(path) == 2 else "0"
    if not db.isdigit():
        raise RedisUrlError(f"the database must be a number, got {db!r}")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"sentinel_password"})
    if unknown:
        raise RedisUrlError(f"unknown parameter(s) {', '.join(unknown)}; only sentinel_password")
    sentinel_password = query.get("sentinel_password", [None])[-1]
    return SentinelTarget(
        sentinels=sentinels,
        service=unquote(path[0]),
        db=int(db),
        username=unquote(user) or None,
        password=unquote(password) or None,
        sentinel_password=sentinel_password,
    )


def _host_port(item: str) -> tuple[str, int]:
    host, colon, port = item.strip().rpartition(":")
    if not colon:
        host, port = port, "26379"  # Sentinel's registered port
    host = host.strip("[]")  # an IPv6 literal
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError(f"each sentinel must read host:port, as in {FORM}")
    return host, int(port)


def check_url(url: str) -> str:
    """`url` if it is a Redis URL this service can use, else RedisUrlError."""
    scheme = urlsplit(url).scheme
    if scheme == SENTINEL_SCHEME:
        parse_sentinel(url)
        return url
    if scheme not in PLAIN_SCHEMES:
        raise RedisUrlError(f"the scheme must be redis, rediss, unix or {SENTINEL_SCHEME}")
    try:
        redis.ConnectionPool.from_url(url)
    except ValueError as error:
        raise RedisUrlError(str(error).split(":", 1)[0]) from None
    return url


@dataclass(frozen=True)
class _SentinelPlan:
    """What either client needs to ask the sentinels for the master, from one parse."""

    sentinels: list[tuple[str, int]]
    sentinel_options: dict[str, Any]
    service: str
    master_options: dict[str, Any]


def _sentinel_plan(url: str, options: dict[str, Any]) -> _SentinelPlan | None:
    """None for a plain Redis URL; for a Sentinel one, the sentinels and both option sets."""
    if urlsplit(url).scheme != SENTINEL_SCHEME:
        return None
    target = parse_sentinel(url)
    # The sentinels answer quickly or not at all: one dead sentinel must not hold a
    # reconnect for the caller's whole socket timeout.
    timeout = min(float(options.get("socket_connect_timeout") or 1.0), 1.0)
    sentinel_options: dict[str, Any] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
    }
    if target.sentinel_password:
        sentinel_options["password"] = target.sentinel_password
    master = {"db": target.db, "username": target.username, "password": target.password}
    return _SentinelPlan(list(target.sentinels), sentinel_options, target.service, master | options)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client on `url` (the current master when it names sentinels)."""
    plan = _sentinel_plan(url, options)
    if plan is None:
        return redis.Redis.from_url(url, **options)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        plan.sentinels, sentinel_kwargs=plan.sentinel_options
    )
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        plan.service, **plan.master_options
    )
    return client


def async_client(url: str, **options: Any) -> aioredis.Redis:
    """An asyncio client on `url` (the current master when it names sentinels)."""
    plan = _sentinel_plan(url, options)
    if plan is None:
        return aioredis.Redis.from_url(url, **options)
    sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        plan.sentinels, sentinel_kwargs=plan.sentinel_options
    )
    client: aioredis.Redis = sentinel.master_for(plan.service, **plan.master_options)
    return client
