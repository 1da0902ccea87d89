"""`inventory dev` as a user runs it: ready, restartable, and leaving nothing behind."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import new_home
from tests.e2e.processes import DevRun, alive, inventory, processes_in_home
from tests.e2e.reading import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def home() -> Iterator[Path]:
    with new_home() as root:
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
    assert set(checks) == {
        "primary",
        "replica",
        "subscription",
        "replication",
        "projections",
        "redis",
    }
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


def test_the_first_start_creates_admin_and_prints_its_password_once(home: Path) -> None:
    first = DevRun(home)
    first.start()
    lines = [line for line in first.banner.splitlines() if "user admin" in line]
    assert len(lines) == 1 and "shown this once" in lines[0], first.banner
    password = lines[0].split("password ")[1].split()[0]
    token = httpx.post(
        f"{first.base_url}/v1/auth/token", json={"username": "admin", "password": password}
    )
    assert token.status_code == 200
    me = httpx.get(
        f"{first.base_url}/v1/me",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    ).json()
    assert me["role"] == "admin" and me["stores"] == ["*"]
    assert first.signal(signal.SIGTERM) == 0

    second = DevRun(home)
    second.start()
    assert "user admin" not in second.banner and password not in second.banner
    assert second.signal(signal.SIGTERM) == 0


def test_the_admin_password_can_be_chosen_in_the_environment(home: Path) -> None:
    run = DevRun(home, {"INVENTORY_ADMIN_PASSWORD": "chosen admin password"})
    run.start()

    assert "INVENTORY_ADMIN_PASSWORD" in run.banner
    assert "chosen admin password" not in run.banner
    token = httpx.post(
        f"{run.base_url}/v1/auth/token",
        json={"username": "admin", "password": "chosen admin password"},
    )
    assert token.status_code == 200
    assert run.signal(signal.SIGTERM) == 0


def demo_counts(primary_url: str) -> dict[str, int]:
    """Events per type on the dev's primary."""
    with psycopg.connect(primary_url) as conn:
        rows = conn.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall()
    return dict(rows)


def test_demo_loads_sample_data_once_and_simulates_pos_traffic(home: Path) -> None:
    run = DevRun(home, args=("--demo",))
    run.start()
    assert "demo           sample stores and products" in run.banner
    primary = env_file(home)["INVENTORY_PRIMARY_URL"]
    wait_until(lambda: demo_counts(primary).get("stock.sold", 0) >= 5, timeout=60)
    counts = demo_counts(primary)
    assert counts["store.opened"] == 3
    assert counts["product.registered"] == 18
    assert counts["stock.reorder_point_set"] == 3 * 18
    assert (home / "demo.key").stat().st_mode & 0o777 == 0o600

    # The history the demo wrote, while it keeps writing, is whole.
    verified = inventory("audit", "verify", env=env_file(home))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert run.signal(signal.SIGTERM) == 0
    assert alive(processes_in_home(home)) == set()

    again = DevRun(home, args=("--demo",))
    again.start()  # the same key; the loader replays instead of adding
    wait_until(lambda: demo_counts(primary).get("stock.sold", 0) > counts["stock.sold"] + 2)
    recounted = demo_counts(primary)
    assert recounted["store.opened"] == 3
    assert recounted["product.registered"] == 18
    assert recounted["stock.reorder_point_set"] == 3 * 18
    assert again.signal(signal.SIGTERM) == 0
