"""A real server switched to read-only and back, as a fenced or demoted primary looks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


def set_read_only(admin_url: str, on: bool) -> None:
    """`default_transaction_read_only` for every session of the server, reloaded."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")  # this session may still write
        if on:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
        conn.execute("SELECT pg_reload_conf()")


@contextmanager
def read_only_server(admin_url: str) -> Iterator[None]:
    """The server takes no writes inside the block; it does again afterwards."""
    set_read_only(admin_url, True)
    try:
        yield
    finally:
        set_read_only(admin_url, False)
