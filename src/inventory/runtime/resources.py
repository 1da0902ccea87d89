"""A process's shared resources: one pool per database and a Redis client (wiring.py opens them)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import redis.asyncio as aioredis
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from inventory.runtime.settings import Settings


@dataclass(frozen=True)
class Resources:
    """What a process shares across requests or messages; owned by its lifespan."""

    settings: Settings
    primary: AsyncConnectionPool  # writes: commands append here
    replica: AsyncConnectionPool  # reads: queries, history and the feed (INVENTORY_READ_URL)
    redis: aioredis.Redis
    # The replica server itself when reads go elsewhere (standbys cannot take writes).
    replica_server: AsyncConnectionPool | None = None

    @property
    def replica_itself(self) -> AsyncConnectionPool:
        """The replica (INVENTORY_REPLICA_URL): what the API writes on the read side (report
        runs) and reads back at once; the read pool when both URLs are one."""
        return self.replica_server or self.replica


class RecentUse:
    """The pool's check on checkout, for connections idle a while only.

    A server restart leaves broken connections in the pool; checking one on checkout
    costs a round trip and turns it into a reconnect instead of a failed request. A
    connection back from a request less than `fresh_seconds` ago is lent unchecked: a
    restart takes longer than that, so such a connection has seen no restart since it
    last worked (and a socket cut in that second fails its one request with a 503, as a
    server dying mid-request does). Skipping the round trip served 14-16% more stock pages
    at 64 readers (bench/README.md, read_side.py).
    """

    def __init__(self, fresh_seconds: float = 1.0, *, writable_only: bool = False) -> None:
        self.fresh_seconds = fresh_seconds
        # A writer's pool over several hosts drops a connection to a server gone read-only
        # (a demoted primary): its next connect finds the writable one.
        self.writable_only = writable_only
        self.returned: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Check `conn` unless it came back from use moments ago."""
        returned = self.returned.get(conn)
        if returned is None or time.monotonic() - returned >= self.fresh_seconds:
            await AsyncConnectionPool.check_connection(conn)
        self._refuse_read_only(conn)

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Note when `conn` came back (the pool calls this for each one returned idle)."""
        self._refuse_read_only(conn)
        self.returned[conn] = time.monotonic()

    def _refuse_read_only(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Raise (the pool then discards `conn`) when its server last reported itself
        read-only; PostgreSQL 14+ reports both settings unasked, so this costs no round trip."""
        if self.writable_only and read_only(conn):
            raise psycopg.OperationalError("the server went read-only: connection dropped")


def read_only(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> bool:
    """Whether `conn`'s server said it takes no writes: `default_transaction_read_only`
    (ALTER SYSTEM, a fenced primary) or `in_hot_standby` (a demoted one)."""
    status = conn.info.parameter_status
    return "on" in (status("default_transaction_read_only"), status("in_hot_standby"))


def refuse_read_only(conn: psycopg.Connection[Any]) -> None:
    """A synchronous writer pool's check: the server answers, and takes writes (else the
    pool discards `conn` and connects anew, to the writable host when the URL lists one)."""
    ConnectionPool.check_connection(conn)
    if read_only(conn):
        conn.close()  # a failed check of an open connection would put it back in the pool
        raise psycopg.OperationalError("the server went read-only: connection dropped")


def writer_checks(url: str) -> dict[str, Any]:
    """An async writer pool's `check` and `reset` on `url`, as `pool(writer=True)` sets them."""
    recent = RecentUse(writable_only=several_hosts(url))
    return {"check": recent.check, "reset": recent.reset}


def sync_writer_checks(url: str) -> dict[str, Any]:
    """A synchronous writer pool's `check` and connection options on `url`: over several
    hosts, only the read-write one, and none kept once its server goes read-only."""
    if not several_hosts(url):
        return {}
    return {"check": refuse_read_only}


def reached_read_only(error: BaseException) -> bool:
    """Whether `error` says a write reached a server taking none (a fenced or demoted
    primary): the writable one takes it later, so it is worth retrying."""
    return isinstance(error, psycopg.errors.ReadOnlySqlTransaction)


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """A Dramatiq actor's `retry_when`: a write that reached a read-only server is retried
    until a writable one takes it (a failover outlasts any fixed count); any other error
    `max_retries` times."""

    def retry(retries: int, error: BaseException) -> bool:
        return reached_read_only(error) or retries < max_retries

    return retry


def several_hosts(url: str) -> bool:
    """Whether the libpq connection string lists more than one host."""
    params = conninfo_to_dict(url)
    return "," in str(params.get("host") or params.get("hostaddr") or "")


def writer_options(url: str) -> dict[str, Any]:
    """A writer's connection options: over several hosts, only the read-write one (libpq's
    `target_session_attrs`, unless the URL names its own); one host is taken as it is."""
    if several_hosts(url) and "target_session_attrs" not in conninfo_to_dict(url):
        return {"target_session_attrs": "read-write"}
    return {}


def connect_options(settings: Settings) -> dict[str, Any]:
    """psycopg's connection options: behind PgBouncer's transaction pooling, never a
    server-side prepared statement (the next transaction may land on another backend)."""
    return {"prepare_threshold": None} if settings.pgbouncer else {}


def pool(
    url: str, settings: Settings, name: str, max_size: int | None = None, *, writer: bool = False
) -> AsyncConnectionPool:
    """A pool on `url` sized by `settings` (or `max_size`), unopened, lending recent
    connections unchecked; a `writer` (the primary's) never keeps one to a read-only
    server when the URL lists another."""
    recent = RecentUse(writable_only=writer and several_hosts(url))
    options = writer_options(url) if writer else {}
    largest = max(settings.pool_max_size, settings.pool_min_size) if max_size is None else max_size
    return AsyncConnectionPool(
        url,
        min_size=min(settings.pool_min_size, largest),
        max_size=largest,
        name=name,
        open=False,
        timeout=10.0,
        # A failed connect is retried with a doubling delay until this runs out, then
        # the next request starts afresh at 1 s: without a bound the delay reaches 16 s
        # while a standby is being promoted, and writes resume that much later.
        reconnect_timeout=5.0,
        check=recent.check,
        reset=recent.reset,
        kwargs={"application_name": f"inventory-{name}", **connect_options(settings), **options},
    )
