"""The primary's pool over several hosts leaves a server gone read-only for the writable
one; a write that reached the read-only server wrote nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from inventory.runtime.resources import pool, writer_options
from inventory.runtime.settings import Settings
from tests.read_only_server import read_only_server


def two_hosts(first: str, second: str) -> str:
    """One libpq string naming both servers, `first` before `second`."""
    a, b = conninfo_to_dict(first), conninfo_to_dict(second)
    return make_conninfo(
        **{**a, "host": f"{a['host']},{b['host']}", "port": f"{a['port']},{b['port']}"}
    )


@pytest.fixture
def probe_table(settings: Settings) -> Iterator[str]:
    """A table of the same name on both servers, for rows naming the server that wrote them."""
    name = f"read_only_probe_{uuid.uuid4().hex[:10]}"
    urls = (settings.primary_admin_url, settings.replica_admin_url)
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {name} (port int NOT NULL)")
    yield name
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {name}")


async def written_on(writers: AsyncConnectionPool, table: str) -> int:
    """Insert one row through the pool; the port of the server that took it."""
    async with writers.connection() as conn:
        cursor = await conn.execute(
            f"INSERT INTO {table} VALUES (inet_server_port()) RETURNING port"
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def rows_on(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


async def test_the_writers_pool_leaves_a_primary_gone_read_only_for_the_writable_host(
    settings: Settings, probe_table: str
) -> None:
    url = two_hosts(settings.primary_admin_url, settings.replica_admin_url)
    primary_port = int(conninfo_to_dict(settings.primary_admin_url)["port"])
    replica_port = int(conninfo_to_dict(settings.replica_admin_url)["port"])
    writers = pool(url, settings, "read-only-probe", max_size=1, writer=True)
    await writers.open(wait=True)
    try:
        first = await written_on(writers, probe_table)
        with read_only_server(settings.primary_admin_url):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                await written_on(writers, probe_table)
            moved = await written_on(writers, probe_table)
    finally:
        await writers.close()

    assert (first, moved) == (primary_port, replica_port)
    assert rows_on(settings.primary_admin_url, probe_table) == 1


def test_only_a_url_of_several_hosts_asks_for_the_read_write_one() -> None:
    one = "postgresql://u:p@db1:5432/inventory"
    two = "postgresql://u:p@db1:5432,db2:5432/inventory"

    assert writer_options(one) == {}
    assert writer_options(two) == {"target_session_attrs": "read-write"}
    assert writer_options(f"{two}?target_session_attrs=any") == {}
