"""The `inventory` command's pieces against servers named in the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from inventory.runtime.postgres import SUPERUSER, EmbeddedPostgres
from inventory.runtime.processes import free_port
from inventory.runtime.settings import Settings
from tests.conftest import new_home
from tests.e2e.processes import inventory

pytestmark = pytest.mark.e2e

COMMANDS = ["dev", "migrate", "serve", "worker", "projections", "users", "keys"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_and_its_environment(command: str) -> None:
    result = inventory(command, "--help")

    assert result.returncode == 0
    assert "INVENTORY_" in result.stdout
    assert len(result.stdout.splitlines()) > 5


def one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_an_unreachable_database_is_one_clear_line(settings: Settings) -> None:
    dead = f"postgresql://inventory:secret@127.0.0.1:{free_port()}/inventory"
    result = inventory(
        "migrate",
        env={
            "INVENTORY_PRIMARY_URL": dead,
            "INVENTORY_REPLICA_URL": dead,
            "INVENTORY_REDIS_URL": settings.redis_url,
            "INVENTORY_PRIMARY_ADMIN_URL": "",
            "INVENTORY_REPLICA_ADMIN_URL": "",
        },
    )

    one_clear_line(result, "connection")
    assert "secret" not in result.stderr


def test_a_malformed_url_is_one_clear_line_without_the_password(settings: Settings) -> None:
    result = inventory(
        "serve",
        env={
            "INVENTORY_PRIMARY_URL": "localhost:5432/inventory?password=hunter2",
            "INVENTORY_REPLICA_URL": settings.replica_url,
            "INVENTORY_REDIS_URL": settings.redis_url,
        },
    )

    one_clear_line(result, "INVENTORY_PRIMARY_URL")


def test_missing_configuration_names_the_variables() -> None:
    env = {name: "" for name in os.environ if name.startswith("INVENTORY_")}
    result = inventory(
        "worker",
        env={
            **env,
            "INVENTORY_PRIMARY_URL": "",
            "INVENTORY_REPLICA_URL": "",
            "INVENTORY_REDIS_URL": "",
        },
    )

    one_clear_line(result, "INVENTORY_PRIMARY_URL", "INVENTORY_REDIS_URL")


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_an_occupied_port_is_one_clear_line(
    command: str, server_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = inventory(
            command,
            "--port",
            str(port),
            env={**server_env, "INVENTORY_HOME": str(tmp_path / "home")},
        )

    one_clear_line(result, str(port), "in use")


@pytest.fixture
def bare_servers() -> Iterator[tuple[str, str, str]]:
    """A new primary and replica with nothing applied: (primary, replica, conninfo) URLs."""
    with new_home() as home:
        servers = [
            EmbeddedPostgres(name, home / name, free_port(), durable=False)
            for name in ("primary", "replica")
        ]
        try:
            for server in servers:
                server.initialize("pw")
                server.start()
            for server in servers:
                server.wait_ready("pw")
            primary, replica = (server.url(SUPERUSER, "pw") for server in servers)
            yield primary, replica, primary
        finally:
            for server in servers:
                server.stop()


def test_three_concurrent_migrates_apply_each_migration_exactly_once(
    bare_servers: tuple[str, str, str], settings: Settings
) -> None:
    primary, replica, conninfo = bare_servers
    env = {
        **os.environ,
        "INVENTORY_PRIMARY_URL": primary,
        "INVENTORY_REPLICA_URL": replica,
        "INVENTORY_REDIS_URL": settings.redis_url,
        "INVENTORY_SUBSCRIPTION_CONNINFO": conninfo,
        "INVENTORY_PRIMARY_ADMIN_URL": "",
        "INVENTORY_REPLICA_ADMIN_URL": "",
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "inventory", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    applied = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("applied")
    ]
    assert len(applied) == len(set(applied))
    for url, directory in ((primary, "migrations"), (replica, "projections")):
        files = sorted(p.name for p in (Path(__file__).parents[2] / directory).glob("*.sql"))
        with psycopg.connect(url) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM schema_migrations ORDER BY name"
                ).fetchall()
            ]
        assert names == files
    with psycopg.connect(replica) as conn:
        assert conn.execute("SELECT count(*) FROM pg_subscription").fetchone() == (1,)


def test_migrate_needs_only_the_databases(bare_servers: tuple[str, str, str]) -> None:
    primary, replica, conninfo = bare_servers
    # Nothing of ours but the admin URLs: no app URLs, no Redis, no JWT secret.
    cleared = {name: "" for name in os.environ if name.startswith(("INVENTORY_", "REDIS"))}
    env = {
        **cleared,
        "INVENTORY_PRIMARY_ADMIN_URL": primary,
        "INVENTORY_REPLICA_ADMIN_URL": replica,
        "INVENTORY_SUBSCRIPTION_CONNINFO": conninfo,
    }

    first = inventory("migrate", env=env)
    again = inventory("migrate", env=env)

    assert first.returncode == 0, first.stderr
    assert "applied primary 0001_roles.sql" in first.stdout
    assert "applied replica 0001_roles.sql" in first.stdout
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "nothing to apply: both schemas are up to date"
    with psycopg.connect(replica) as conn:
        assert conn.execute("SELECT count(*) FROM pg_subscription").fetchone() == (1,)


def test_migrate_without_a_database_names_the_variables() -> None:
    cleared = {name: "" for name in os.environ if name.startswith("INVENTORY_")}
    result = inventory("migrate", env=cleared)

    one_clear_line(result, "INVENTORY_PRIMARY_ADMIN_URL", "INVENTORY_PRIMARY_URL")
    assert "REDIS" not in result.stderr


def test_projections_status_and_rebuild(server_env: dict[str, str]) -> None:
    rebuilt = inventory("projections", "rebuild", "stream_heads", env=server_env)
    status = inventory("projections", "status", env=server_env)
    unknown = inventory("projections", "rebuild", "no_such_projector", env=server_env)

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt stream_heads" in rebuilt.stderr
    assert status.returncode == 0
    assert status.stdout.splitlines()[1].split()[0] == "stream_heads"
    one_clear_line(unknown, "no_such_projector", "stream_heads")


def test_projections_rebuild_all_in_one_pass(server_env: dict[str, str]) -> None:
    everything = inventory("projections", "rebuild", "--all", env=server_env)
    nothing = inventory("projections", "rebuild", env=server_env)

    assert everything.returncode == 0, everything.stderr
    assert "rebuilt stream_heads, stock, catalog, daily_movements" in everything.stderr
    one_clear_line(nothing, "--all")
