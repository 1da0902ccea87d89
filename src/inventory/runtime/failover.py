"""The manual failover of the primary: check, promote its standby, repoint the replica."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from inventory.runtime.migrations import SUBSCRIPTION
from inventory.runtime.processes import RuntimeFailure
from inventory.runtime.settings import redact

# Settings a promoted standby may carry from its old primary (a base backup taken after
# they were set): each names a standby the new primary does not have, and would hold
# back the read replica (synchronized_standby_slots) or every commit (the other).
WAITING_SETTINGS = ("synchronized_standby_slots", "synchronous_standby_names")

Say = Callable[[str], None]


class FailoverRefused(RuntimeFailure):
    """A check before the promotion failed: nothing was changed."""


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def _one(
    conn: psycopg.Connection[tuple[object, ...]], query: str, *params: object
) -> tuple[object, ...] | None:
    return conn.execute(query.encode(), params or None).fetchone()


def subscription_slot(replica_admin_url: str, name: str = SUBSCRIPTION) -> tuple[str, str]:
    """The subscription's (slot name, conninfo); refused unless its slot is a failover slot."""
    with _connect(replica_admin_url) as conn:
        row = _one(
            conn,
            "SELECT subslotname, subconninfo, subfailover FROM pg_subscription WHERE subname = %s",
            name,
        )
    if row is None:
        raise FailoverRefused(f"the replica has no subscription {name}: run `inventory migrate`")
    if not row[2]:
        raise FailoverRefused(
            f"the subscription {name} was created without failover = true, so no standby "
            "holds its slot: run `inventory migrate` (it converts it), wait for the slot "
            "to sync, then fail over"
        )
    return str(row[0]), str(row[1])


def check_standby(standby_url: str, slot: str, say: Say) -> None:
    """Refuse unless `standby_url` is a standby holding a synced copy of `slot`."""
    with _connect(standby_url) as conn:
        row = _one(conn, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
        if row is None or not row[0]:
            raise FailoverRefused(
                f"{redact(standby_url)} is not a standby (it is not in recovery): it may "
                "already be the primary; nothing to promote"
            )
        say(f"checked: the standby is in recovery, WAL replayed up to {row[1]}")
        state = _one(
            conn,
            "SELECT synced, temporary, invalidation_reason FROM pg_replication_slots"
            " WHERE slot_name = %s",
            slot,
        )
    if state is None:
        raise FailoverRefused(
            f"the standby holds no copy of the slot {slot}: it needs sync_replication_slots=on,"
            " hot_standby_feedback=on and a dbname in primary_conninfo (docs/operations.md)"
        )
    if not state[0] or state[1] or state[2] is not None:
        raise FailoverRefused(
            f"the slot {slot} is not failover-ready on the standby (synced={state[0]},"
            f" temporary={state[1]}, invalidated={state[2]}): promoting now would lose the"
            " replica's place in the stream; re-seed the replica instead (docs/operations.md)"
        )
    say(f"checked: the slot {slot} is synced on the standby and failover-ready")


def check_primary_gone(primary_url: str, say: Say) -> None:
    """Refuse while the old primary still accepts writes: two primaries would split."""
    try:
        with psycopg.connect(
            primary_url, autocommit=True, connect_timeout=3, target_session_attrs="read-write"
        ) as conn:
            row = _one(conn, "SELECT inet_server_addr()::text, inet_server_port()")
    except psycopg.OperationalError:
        say("checked: no server named by the primary's URL accepts writes")
        return
    where = f"{row[0]}:{row[1]}" if row else "its address"
    raise FailoverRefused(
        f"a primary still accepts writes at {where}: stop it (and keep it stopped) before "
        "promoting its standby, or two primaries will take different commands"
    )


def promote(standby_url: str, say: Say, wait_seconds: int = 60) -> None:
    """pg_promote() the standby, then clear settings that wait for standbys it lacks."""
    started = time.monotonic()
    with _connect(standby_url) as conn:
        row = _one(conn, "SELECT pg_promote(true, %s)", wait_seconds)
        if row is None or not row[0]:
            raise RuntimeFailure(f"the standby did not finish promoting in {wait_seconds} s")
        say(f"promoted: the standby accepts writes ({time.monotonic() - started:.2f} s)")
        for name in WAITING_SETTINGS:
            value = _one(conn, "SELECT current_setting(%s)", name)
            if value and value[0]:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = ''").format(sql.Identifier(name)))
                conn.execute("SELECT pg_reload_conf()")
                say(f"cleared: {name} (was {value[0]!r}) on the new primary")


def new_conninfo(current: str, standby_url: str) -> str | None:
    """The subscription's conninfo aimed at the standby: None when it already lists the
    standby's host and port and asks for the read-write server among them."""
    params = conninfo_to_dict(current)
    target = conninfo_to_dict(standby_url)
    host, port = str(target.get("host") or "localhost"), str(target.get("port") or "5432")
    hosts = str(params.get("host") or "localhost").split(",")
    ports = str(params.get("port") or "5432").split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    if (host, port) in zip(hosts, ports, strict=False) and params.get("target_session_attrs") in (
        "read-write",
        "primary",
    ):
        return None
    params.update(host=host, port=port)
    params.pop("hostaddr", None)
    return make_conninfo(**{key: str(value) for key, value in params.items()})


def repoint(
    replica_admin_url: str, conninfo: str | None, say: Say, name: str = SUBSCRIPTION
) -> None:
    """ALTER SUBSCRIPTION ... CONNECTION to the new primary (when it needs a new one)."""
    if conninfo is None:
        say(f"kept: the subscription {name} already lists the new primary (read-write)")
        return
    with _connect(replica_admin_url) as conn:
        conn.execute(
            sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(
                sql.Identifier(name), sql.Literal(conninfo)
            )
        )
    say(f"repointed: the subscription {name} to {redact(conninfo)}")


def wait_streaming(new_primary_url: str, slot: str, say: Say, timeout: float = 60.0) -> None:
    """Until the replica's apply worker holds its slot on the new primary."""
    started = time.monotonic()
    with _connect(new_primary_url) as conn:
        while True:
            row = _one(conn, "SELECT active FROM pg_replication_slots WHERE slot_name = %s", slot)
            if row is not None and row[0]:
                break
            if time.monotonic() - started > timeout:
                raise RuntimeFailure(
                    f"the replica did not connect to the new primary's slot {slot} in "
                    f"{timeout:.0f} s: see the replica's log"
                )
            time.sleep(0.1)
    say(
        f"streaming: the replica receives from the new primary ({time.monotonic() - started:.2f} s)"
    )
