"""What readiness asks a physical standby of the replica: is it one, is it streaming, how
far behind its upstream is its replay."""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg

Conn = psycopg.AsyncConnection[Any]

# Seconds behind: 0 when everything received is replayed (an idle upstream sends nothing
# to replay, and `now() - last replay` would grow without any lag); otherwise the age of
# the last transaction replayed. `pg_stat_wal_receiver` shows its pid to every role (the
# other columns need pg_read_all_stats): no pid, no stream from the upstream.
STANDBY_STATUS = """
SELECT pg_is_in_recovery(),
       (SELECT pid FROM pg_stat_wal_receiver) IS NOT NULL,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
            THEN 0.0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0.0)
       END::float8,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)::bigint
"""


class Standby(NamedTuple):
    """A server's recovery state: `in_recovery` False means it is no standby."""

    in_recovery: bool
    streaming: bool
    replay_lag_seconds: float
    replay_lag_bytes: int


async def standby_status(conn: Conn) -> Standby:
    """Whether the server is a standby and, if so, how far its replay trails."""
    cursor = await conn.execute(STANDBY_STATUS)
    row = await cursor.fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    in_recovery, streaming, seconds, lag_bytes = row
    return Standby(bool(in_recovery), bool(streaming), float(seconds), int(lag_bytes))
