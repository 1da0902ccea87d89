"""The embedded topology the test session and `inventory dev` share."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from inventory.runtime.embedded import EmbeddedTopology
from inventory.runtime.postgres import EmbeddedPostgres
from inventory.runtime.processes import RuntimeFailure
from inventory.runtime.settings import Settings
from tests.conftest import new_home


def test_an_event_appended_on_the_primary_reaches_the_replica_with_a_seq(
    settings: Settings, store_id: str
) -> None:
    event_id = uuid.uuid4()
    with psycopg.connect(settings.primary_url) as conn:
        conn.execute(
            "INSERT INTO events (id, stream, version, type, store, data, metadata, occurred_at)"
            " VALUES (%s, %s, 1, 'test.happened', %s, '{}', '{}', now())",
            (event_id, f"test-{store_id}", store_id),
        )
    deadline = time.monotonic() + 10
    row = None
    with psycopg.connect(settings.replica_url, autocommit=True) as conn:
        while row is None and time.monotonic() < deadline:
            row = conn.execute(
                "SELECT seq, partition FROM events WHERE id = %s", (event_id,)
            ).fetchone()
            time.sleep(0.02)
    assert row is not None, "the event never reached the replica"
    assert row[0] > 0
    assert row[1] == store_id


def test_the_app_role_cannot_write_the_replicas_events_copy(settings: Settings) -> None:
    with psycopg.connect(settings.replica_url) as conn:
        try:
            conn.execute(
                "INSERT INTO events (position, id, stream, version, type, data, metadata,"
                " occurred_at, recorded_at) VALUES (-1, gen_random_uuid(), 'x', 1, 't', '{}',"
                " '{}', now(), now())"
            )
        except psycopg.errors.InsufficientPrivilege:
            return
    raise AssertionError("the app role inserted into the replica's events copy")


def test_a_server_whose_port_another_postgresql_answers_on_is_never_taken_as_ready(
    topology: EmbeddedTopology,
) -> None:
    # The same superuser password as the session's primary, on the primary's port: a
    # check that only asks "does a query succeed?" would take the primary for this one.
    assert topology.primary is not None
    password = topology.secrets["postgres"]
    with new_home() as home:
        server = EmbeddedPostgres("second", home / "second", topology.primary.port, durable=False)
        server.initialize(password)
        server.start()
        try:
            with pytest.raises(RuntimeFailure, match="exited during start-up"):
                server.wait_ready(password, timeout=30)
        finally:
            server.stop()
