"""The migration runner: ordered, recorded with checksums, refusing edited history."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from inventory.runtime.migrations import MigrationError, migrate
from inventory.runtime.settings import Settings


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_pending_migrations_are_applied_once_in_order(
    tmp_path: Path, scratch_database: str
) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE first (id int);")
    write(tmp_path, "0002_second.sql", "INSERT INTO first VALUES (1), (2);")

    assert migrate(scratch_database, tmp_path) == ["0001_first.sql", "0002_second.sql"]
    assert migrate(scratch_database, tmp_path) == []

    with psycopg.connect(scratch_database) as conn:
        assert conn.execute("SELECT count(*) FROM first").fetchone() == (2,)


def test_an_edited_applied_migration_is_refused(tmp_path: Path, scratch_database: str) -> None:
    write(tmp_path, "0001_first.sql", "CREATE TABLE first (id int);")
    migrate(scratch_database, tmp_path)
    write(tmp_path, "0001_first.sql", "CREATE TABLE first (id bigint);")

    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(scratch_database, tmp_path)


def test_a_failing_migration_leaves_nothing_half_applied(
    tmp_path: Path, scratch_database: str
) -> None:
    write(tmp_path, "0001_broken.sql", "CREATE TABLE half (id int); SELECT no_such_function();")

    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate(scratch_database, tmp_path)

    with psycopg.connect(scratch_database) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_a_misnamed_migration_file_is_an_error(tmp_path: Path, scratch_database: str) -> None:
    write(tmp_path, "first.sql", "SELECT 1;")

    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        migrate(scratch_database, tmp_path)


def test_the_primary_holds_only_the_functions_the_code_calls(settings: Settings) -> None:
    # Forward-only migrations replace a function's body (0010 replaced 0007's
    # append_events in place); an overload or a function nothing calls would linger.
    with psycopg.connect(settings.primary_admin_url) as conn:
        functions = conn.execute(
            "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc AS p"
            " JOIN pg_namespace AS n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' ORDER BY 1, 2"
        ).fetchall()

    assert functions == [
        ("append_events", "writes jsonb, event_metadata jsonb"),
        ("command_batch", "calls jsonb"),
        ("command_batch_chains", "calls jsonb"),
        (
            "command_once",
            "key_lock text, for_principal text, for_key text, request_fingerprint bytea,"
            " response_status integer, response_body bytea, event_ids uuid[],"
            " write_streams text[], write_versions bigint[], read_streams text[],"
            " read_versions bigint[], writes jsonb, event_metadata jsonb",
        ),
        (
            "event_link",
            "previous text, id uuid, stream text, version bigint, type text, store text,"
            " sku text, occurred_at timestamp with time zone,"
            " recorded_at timestamp with time zone, data jsonb, metadata jsonb",
        ),
        ("events_refuse_change", ""),
        ("lock_streams", "names text[]"),
        ("response_with_positions", "response bytea, positions bigint[]"),
    ]
