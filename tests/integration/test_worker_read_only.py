"""The worker's own primary pools follow the writable host over a URL of several, as the
API's does, and its actors retry a write that reached a read-only server until one lands."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from inventory.runtime.resources import retry_when, sync_writer_checks, writer_options
from inventory.runtime.settings import Settings
from inventory.worker.context import CommandServices
from inventory.worker.imports import run_import
from inventory.worker.reservations import expire_reservation
from inventory.worker.webhooks import deliver_webhooks
from tests.integration.test_read_only_pool import (
    probe_table,  # noqa: F401 - the fixture, shared
    rows_on,
    two_hosts,
    written_on,
)
from tests.read_only_server import read_only_server


def port(url: str) -> int:
    return int(conninfo_to_dict(url)["port"])


async def test_the_workers_command_pool_leaves_a_primary_gone_read_only(
    settings: Settings,
    probe_table: str,  # noqa: F811 - the fixture imported above
) -> None:
    url = two_hosts(settings.primary_admin_url, settings.replica_admin_url)
    commands = CommandServices(url, after_commit=lambda decisions: None)
    service = await commands.get()
    try:
        first = await written_on(service.pool, probe_table)
        with read_only_server(settings.primary_admin_url):
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as refused:
                await written_on(service.pool, probe_table)
            moved = await written_on(service.pool, probe_table)
            # The import's and the sweeps' own connections ask for the read-write host.
            with psycopg.connect(url, autocommit=True, **commands.options) as conn:
                row = conn.execute("SELECT inet_server_port()").fetchone()
    finally:
        await service.pool.close()

    assert (first, moved) == (port(settings.primary_admin_url), port(settings.replica_admin_url))
    assert row is not None and row[0] == port(settings.replica_admin_url)
    assert rows_on(settings.primary_admin_url, probe_table) == 1
    # The actors writing on the primary retry that refusal past their usual count.
    for actor in (run_import, expire_reservation, deliver_webhooks):
        retry = actor.options["retry_when"]
        assert retry(1_000, refused.value), actor.actor_name
        assert not retry(1_000, RuntimeError("a bug")), actor.actor_name
    assert retry_when(5)(4, RuntimeError("a bug"))
    assert not retry_when(5)(5, RuntimeError("a bug"))


def test_the_webhook_deliverers_pool_checks_out_only_the_writable_host(
    settings: Settings,
) -> None:
    url = two_hosts(settings.primary_admin_url, settings.replica_admin_url)
    writers = ConnectionPool(
        url,
        min_size=1,
        max_size=1,
        kwargs=writer_options(url),
        open=True,
        **sync_writer_checks(url),
    )
    try:
        with writers.connection() as conn:
            first = conn.execute("SELECT inet_server_port()").fetchone()
        with read_only_server(settings.primary_admin_url), writers.connection() as conn:
            moved = conn.execute("SELECT inet_server_port()").fetchone()
    finally:
        writers.close()

    assert first == (port(settings.primary_admin_url),)
    assert moved == (port(settings.replica_admin_url),)
