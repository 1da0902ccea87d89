"""A real server switched to read-only and back, as a fenced or demoted primary looks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

# pg_reload_conf() only signals the postmaster. Once a new session sees the setting, the
# postmaster has reloaded and signalled every backend (one step of its loop, before it
# accepts that session); a backend applies a reload it was signalled before it runs its
# next command, so an idle pooled connection then writes under the new setting.
SETTLE_TRIES = 200


def set_read_only(admin_url: str, on: bool) -> None:
    """`default_transaction_read_only` for every session of the server, reloaded."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session may still write
        if on:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        conn.execute("SELECT pg_reload_conf()")
    _settled(admin_url, "on" if on else "off")


def _settled(admin_url: str, wanted: str) -> None:
    """Wait (bounded) until a new session of the server sees the setting `wanted`."""
    for _ in range(SETTLE_TRIES):
        with psycopg.connect(admin_url, autocommit=True) as conn:
            row = conn.execute("SHOW default_transaction_read_only").fetchone()
        if row is not None and row[0] == wanted:
            return
        time.sleep(0.05)
    raise AssertionError(f"default_transaction_read_only never became {wanted}")


@contextmanager
def read_only_server(admin_url: str) -> Iterator[None]:
    """The server takes no writes inside the block; it does again afterwards."""
    set_read_only(admin_url, True)
    try:
        yield
    finally:
        set_read_only(admin_url, False)
