"""`inventory dev` as a user runs it: ready, restartable, and leaving nothing behind."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import new_home
from tests.e2e.processes import DevRun, alive, processes_in_home

pytestmark = pytest.mark.e2e


@pytest.fixture
def home() -> Iterator[Path]:
    root = new_home()
    yield root / "home"
    leftovers = alive(processes_in_home(root))
    for pid in leftovers:  # never leak servers into the rest of the session
        import psutil

        psutil.Process(pid).kill()


def env_file(home: Path) -> dict[str, str]:
    lines = (home / "dev.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def test_dev_is_ready_and_sigterm_leaves_no_process_behind(home: Path) -> None:
    run = DevRun(home)
    run.start()

    ready = run.ready()
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"primary", "replica", "subscription", "replication", "redis"}
    assert all(check["ok"] for check in checks.values())
    owned = run.tree()
    assert len(owned) >= 5  # dev, api, worker, two postmasters (and their backends), redis

    assert run.signal(signal.SIGTERM) == 0
    assert alive(owned) == set()
    assert alive(processes_in_home(home)) == set()


def test_a_second_start_keeps_the_data(home: Path) -> None:
    first = DevRun(home)
    first.start()
    admin_url = env_file(home)["INVENTORY_PRIMARY_ADMIN_URL"]
    with psycopg.connect(admin_url) as conn:
        conn.execute("CREATE TABLE kept (note text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    assert first.signal(signal.SIGINT) == 0

    second = DevRun(home)
    second.start()
    with psycopg.connect(env_file(home)["INVENTORY_PRIMARY_ADMIN_URL"]) as conn:
        assert conn.execute("SELECT note FROM kept").fetchall() == [("still here",)]
    assert second.signal(signal.SIGTERM) == 0


def test_a_killed_run_is_recovered_by_the_next_start(home: Path) -> None:
    killed = DevRun(home)
    killed.start()
    orphans = killed.tree() - {killed.process.pid if killed.process else 0}
    killed.signal(signal.SIGKILL)
    assert alive(orphans), "SIGKILL should leave the servers running for this test to matter"

    recovered = DevRun(home)
    recovered.start()

    assert alive(orphans) == set()
    assert recovered.ready().status_code == 200
    owned = recovered.tree()
    assert recovered.signal(signal.SIGTERM) == 0
    assert alive(owned) == set()
