"""A CREATE INDEX CONCURRENTLY migration that failed mid-build is rerun on a clean slate:
the INVALID index it left is dropped first, and the rerun builds a valid one."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from inventory.runtime.migrations import NO_TRANSACTION, migrate


def index_state(url: str, name: str) -> tuple[bool, ...] | None:
    """(valid,) for the index `name`, None when there is none."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)
        ).fetchone()
    return None if row is None else (bool(row[0]),)


@pytest.mark.parametrize("guard", ["", "IF NOT EXISTS "])
def test_a_rerun_concurrent_index_migration_replaces_the_invalid_index_it_left(
    tmp_path: Path, scratch_database: str, guard: str
) -> None:
    (tmp_path / "0001_skus.sql").write_text(
        "CREATE TABLE skus (code text NOT NULL); INSERT INTO skus VALUES ('a'), ('a');"
    )
    (tmp_path / "0002_skus_code.sql").write_text(
        f"{NO_TRANSACTION}\n-- CREATE INDEX CONCURRENTLY in a comment names nothing\n"
        f"CREATE UNIQUE INDEX CONCURRENTLY {guard}skus_code ON skus (code);\n"
    )
    # The build fails half-way (a duplicate), as a killed or timed-out one does.
    with pytest.raises(psycopg.errors.UniqueViolation):
        migrate(scratch_database, tmp_path)
    assert index_state(scratch_database, "skus_code") == (False,)

    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute("DELETE FROM skus WHERE ctid = (SELECT max(ctid) FROM skus)")
    assert migrate(scratch_database, tmp_path) == ["0002_skus_code.sql"]

    assert index_state(scratch_database, "skus_code") == (True,)
    with psycopg.connect(scratch_database) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO skus VALUES ('a')")


def index_oid(url: str, name: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass(%s)::oid", (name,)).fetchone()
    return None if row is None else row[0]


def test_a_valid_index_of_the_same_name_is_kept(tmp_path: Path, scratch_database: str) -> None:
    (tmp_path / "0001_skus.sql").write_text(
        "CREATE TABLE skus (code text NOT NULL); CREATE INDEX skus_code ON skus (code);"
    )
    migrate(scratch_database, tmp_path)
    built = index_oid(scratch_database, "skus_code")
    (tmp_path / "0002_skus_code.sql").write_text(
        f"{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS skus_code ON skus (code);\n"
    )

    assert migrate(scratch_database, tmp_path) == ["0002_skus_code.sql"]

    assert built is not None and index_oid(scratch_database, "skus_code") == built
    assert index_state(scratch_database, "skus_code") == (True,)
